"""`twinguard forensics`: one threat's evidence from the topics, collected into one directory.

What an incident responder hands on: the threat, the device's twin at that time, the window's
features, the raw source messages (by the threat's source partition and offsets), the model's
metadata and the actions taken. Whatever cannot be found is said in the README, not left out silently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, TopicPartition
from tqdm import tqdm

from twinguard.operators.detect.rule_threats import RULES_VERSION
from twinguard.operators.detect.scoring import META_FILE, NO_MODEL, default_model_dir
from twinguard.operators.io.kafka import quiet_settings, scan_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.consume.reader import threats
from twinguard.pipelines.forensics.readme import readme
from twinguard.schemas.messages import Action, ThreatEvent, TwinState

_twin = msgspec.json.Decoder(TwinState)
_action = msgspec.json.Decoder(Action)
MAX_SOURCE_SCAN = 2_000_000  # messages read from the source range at most (a partition's window)


@dataclass
class Bundle:
    """What was found for one threat, and what was not (notes end up in the README)."""

    threat: ThreatEvent
    twin: TwinState | None = None
    twin_choice: str = ""
    twin_history: list[TwinState] = field(default_factory=list)
    source: list[dict[str, Any]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    model: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def find_threat(cfg: Config, threat_id: str) -> ThreatEvent:
    reader = threats(cfg)
    for ev in reader:
        if ev.id == threat_id:
            return ev
    msg = (f"threat {threat_id!r} not found in {cfg.topics.threats} ({reader.stats.records} records "
           "read): list the ids with `twinguard threats`")
    raise ValueError(msg)


def _scan(cfg: Config, topic: str) -> Iterator[Any]:
    bar = tqdm(scan_topic(cfg.kafka.client_settings(), topic), desc=f"reading {topic}",
               unit="msg", unit_scale=True, disable=None, leave=False)
    yield from bar


def twin_at(history: list[TwinState], ev: ThreatEvent) -> tuple[TwinState | None, str]:
    """The twin version this detection produced (its last_threat is the threat), else the last
    version written before the threat was detected, else the first one after."""
    for t in history:
        if t.last_threat is not None and t.last_threat.id == ev.id:
            return t, "the twin version written with this threat (last_threat.id matches)"
    before = [t for t in history if t.updated_at <= ev.detected_at]
    if before:
        return before[-1], "the last twin version written before the threat was detected"
    if history:
        return history[0], "the first twin version after the threat (none older is left)"
    return None, ""


def device_twins(cfg: Config, device_id: str) -> tuple[list[TwinState], int]:
    """Every version of the device's twin still in the (compacted) twins topic, oldest first."""
    key = device_id.encode()
    found, unreadable = [], 0
    for m in _scan(cfg, cfg.topics.twins):
        if m.key() == key and m.value():
            try:
                found.append(_twin.decode(m.value()))
            except msgspec.DecodeError:
                unreadable += 1
    return found, unreadable


def source_messages(cfg: Config, ev: ThreatEvent) -> list[dict[str, Any]]:
    """The device's messages in the threat's source range of the telemetry topic."""
    if ev.source is None:
        return []
    src, key = ev.source, ev.device_id.encode()
    c = Consumer({**cfg.kafka.client_settings(), **quiet_settings("forensics"),
                  "group.id": "twinguard-forensics", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    out: list[dict[str, Any]] = []
    try:
        c.assign([TopicPartition(cfg.topics.telemetry, src.partition, src.first_offset)])
        seen, empty_polls = 0, 0
        while seen < MAX_SOURCE_SCAN and empty_polls < 20:  # noqa: PLR2004 - ~10 s of nothing
            msgs = c.consume(5000, 0.5)
            empty_polls = 0 if msgs else empty_polls + 1
            for m in msgs:
                off = m.offset()
                if m.error() is not None or off is None or off > src.last_offset:
                    return out  # past the range, or the partition ends before it does
                seen += 1
                if m.key() == key:
                    out.append(_raw(m))
        return out
    finally:
        c.close()


def activity_messages(cfg: Config, ev: ThreatEvent) -> list[dict[str, Any]]:
    """Rule threats from operator activity carry no offsets: the device's activity messages whose
    event time falls in the threat's window, found by scanning the activity topic."""
    key, found = ev.device_id.encode(), []
    for m in _scan(cfg, cfg.topics.activity):
        if m.key() == key and ev.window_start <= _event_ms(m.value()) <= ev.window_end:
            found.append(_raw(m))
    return found


def _event_ms(value: bytes | None) -> int:
    """A message's `ts` in epoch ms (-1 when it has none that reads)."""
    try:
        ts = json.loads(value or b"").get("ts")
        if isinstance(ts, str):
            t = datetime.fromisoformat(ts)
            return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)
        return int(ts)
    except (ValueError, TypeError, AttributeError):
        return -1


def _raw(m: Any) -> dict[str, Any]:
    """A message as JSON: the value parsed if it is JSON, else base64 (kept byte-exact either way)."""
    value: bytes = m.value() or b""
    doc: dict[str, Any] = {"partition": m.partition(), "offset": m.offset(),
                           "timestamp_ms": m.timestamp()[1], "key": (m.key() or b"").decode(
                               "utf-8", "replace"), "value_b64": base64.b64encode(value).decode()}
    try:
        doc["value"] = json.loads(value)
    except ValueError:
        doc["value"] = None
    return doc


def threat_actions(cfg: Config, threat_id: str) -> list[Action]:
    found = []
    for m in _scan(cfg, cfg.topics.actions):
        try:
            a = _action.decode(m.value() or b"")
        except msgspec.DecodeError:
            continue
        if a.threat_id == threat_id:
            found.append(a)
    return found


def model_metadata(cfg: Config, version: str) -> tuple[dict[str, Any] | None, str]:
    """The metadata of the model that scored the threat, if this config still serves it."""
    if version in (RULES_VERSION, NO_MODEL):
        return {"version": version, "note": "rule-based detection: no learned model involved"}, ""
    d = Path(cfg.detection.model_dir) if cfg.detection.model_dir else default_model_dir()
    path = d / META_FILE
    if not path.is_file():
        return None, f"no model metadata at {path}"
    meta = dict(json.loads(path.read_text()))
    if str(meta.get("version")) != version:
        return None, (f"the configured model ({d}) is {meta.get('version')}, not the threat's "
                      f"{version}: find that version's metadata.json in your model store")
    return meta, ""


def collect(cfg: Config, threat_id: str) -> Bundle:
    """Everything the topics and the model directory still hold about `threat_id`."""
    b = Bundle(find_threat(cfg, threat_id))
    ev = b.threat
    b.twin_history, unreadable = device_twins(cfg, ev.device_id)
    b.twin, b.twin_choice = twin_at(b.twin_history, ev)
    if b.twin is None:
        b.notes.append(f"no twin of {ev.device_id} is left in {cfg.topics.twins}")
    if unreadable:
        b.notes.append(f"{unreadable} twin records of the device could not be read")
    src = ev.source
    b.source = source_messages(cfg, ev) if src else activity_messages(cfg, ev)
    if src is None and not b.source:
        b.notes.append(f"the threat carries no source range and {cfg.topics.activity} holds no "
                       f"message of {ev.device_id} in its window")
    elif src is not None and not b.source:
        b.notes.append(f"no messages of {ev.device_id} left in {cfg.topics.telemetry} partition "
                       f"{src.partition} offsets {src.first_offset}-{src.last_offset} (retention?)")
    b.actions = threat_actions(cfg, ev.id)
    b.model, note = model_metadata(cfg, ev.model_version)
    if note:
        b.notes.append(note)
    return b


def write(b: Bundle, out: Path, cfg: Config) -> list[Path]:
    """The bundle's files under `out` (which must be new or empty)."""
    if out.exists() and any(out.iterdir()):
        msg = f"{out} is not empty: pass a new --out directory (a bundle is never mixed with others)"
        raise ValueError(msg)
    out.mkdir(parents=True, exist_ok=True)
    enc = msgspec.json.Encoder()
    files = {
        "threat.json": _pretty(msgspec.to_builtins(b.threat)),
        "features.json": _pretty({k: msgspec.to_builtins(getattr(b.threat, k)) for k in (
            "feature_schema", "window_start", "window_end", "features", "probabilities",
            "detectors", "reasons", "score")}),
        "twin.json": _pretty({"chosen": b.twin_choice, "twin": msgspec.to_builtins(b.twin)}),
        "twin_history.jsonl": b"".join(enc.encode(t) + b"\n" for t in b.twin_history),
        "source_messages.jsonl": b"".join(json.dumps(m).encode() + b"\n" for m in b.source),
        "actions.jsonl": b"".join(enc.encode(a) + b"\n" for a in b.actions),
        "model.json": _pretty(b.model),
    }
    written = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        written.append(out / name)
    (out / "README.md").write_text(readme(b.threat, cfg.topics, len(b.twin_history), b.twin_choice,
                                          len(b.source), len(b.actions), b.model, b.notes))
    return [*written, out / "README.md"]


def _pretty(doc: Any) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
