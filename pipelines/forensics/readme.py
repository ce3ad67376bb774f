"""The bundle's README.md: what happened, what each file holds, and what could not be found."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twinguard.pipelines.config import TopicsConfig
from twinguard.pipelines.text import printable
from twinguard.schemas.messages import ThreatEvent


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def readme(ev: ThreatEvent, topics: TopicsConfig, twins: int, twin_choice: str, source: int,
           actions: int, model: dict[str, Any] | None, notes: list[str]) -> str:
    """Markdown for people; every string from the topics is escaped (`printable`), since a
    README is read in terminals too."""
    p = printable
    src = (f"{p(topics.telemetry)} partition {ev.source.partition}, offsets "
           f"{ev.source.first_offset}-{ev.source.last_offset}" if ev.source else
           f"no offsets recorded (a rule threat): the device's {p(topics.activity)} messages in "
           "the window")
    lines = [
        f"# Forensic bundle: threat {p(ev.id)}",
        "",
        f"- **{p(ev.severity)} {p(ev.threat)}** on device `{p(ev.device_id)}` ({p(ev.device_type)})"
        f", score {ev.score:.2f}" + (f", operator `{p(ev.user)}`" if ev.user else ""),
        f"- window {_utc(ev.window_start)} to {_utc(ev.window_end)} (event time); detected "
        f"{_utc(ev.detected_at)}",
        f"- detectors: {p(', '.join(ev.detectors) or 'none (model only)')}",
        f"- model {p(ev.model_version)}, feature schema {p(ev.feature_schema)}",
        f"- source: {src}",
        "",
        "## Why",
        "",
        *(f"- {p(r)}" for r in ev.reasons),
        "",
        "## Files",
        "",
        f"- `threat.json`: the threat as written to {p(topics.threats)}",
        "- `features.json`: the window's features and their contributions, class probabilities, "
        "detectors and reasons",
        f"- `twin.json`: the device's twin at that time ({p(twin_choice) or 'none found'}); "
        f"`twin_history.jsonl`: all {twins} versions still in {p(topics.twins)}",
        f"- `source_messages.jsonl`: {source} raw messages of the device in the source range "
        "(value parsed, and byte-exact as value_b64)",
        f"- `actions.jsonl`: {actions} actions taken for this threat ({p(topics.actions)})",
        "- `model.json`: " + (f"metadata of model {p(model.get('version'))}" if model
                              else "null (see notes)"),
    ]
    if notes:
        lines += ["", "## Not found", "", *(f"- {p(n)}" for n in notes)]
    return "\n".join(lines) + "\n"
