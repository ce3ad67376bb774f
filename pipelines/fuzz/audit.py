"""Accounting of a fuzz phase per kind of input: produced = processed (twin versions and commands of
the kind's devices) + dead-lettered (dead letters at the kind's offsets); the rest is lost."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.fuzz.model import Kind, Outcome, kind_of_device
from twinguard.pipelines.fuzz.produce import Produced

READ_TIMEOUT_S = 300.0


def read_outcome(cfg: Config, logs: str) -> Outcome:
    """Latest twin per device, every threat, dead letters by source position."""
    settings = cfg.kafka.client_settings()
    twins: dict[str, dict[str, Any]] = {}
    for k, v in read_topic(settings, cfg.topics.twins, READ_TIMEOUT_S):
        if k is not None and v:
            twins[k.decode("utf-8", "replace")] = json.loads(v)  # compacted: the last one wins
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats, READ_TIMEOUT_S)]
    dead: dict[tuple[str, int, int], dict[str, Any]] = {}
    for _, v in read_topic(settings, cfg.topics.deadletter, READ_TIMEOUT_S):
        d = json.loads(v)
        dead[(d["topic"], int(d["partition"]), int(d["offset"]))] = d  # restarts repeat some
    return Outcome(twins, threats, dead, logs)


def account(kinds: list[Kind], produced: Produced, o: Outcome) -> dict[str, dict[str, Any]]:
    """Per kind: produced, processed, dead-lettered (by reason), lost, and its checks' problems."""
    processed: Counter[str] = Counter()
    for dev, t in o.twins.items():
        kind = kind_of_device(dev)
        if kind is not None:
            processed[kind] += int(t.get("version", 0)) + int(t.get("commands", 0))
    dead: Counter[str] = Counter()
    dead_intel: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {k.name: Counter() for k in kinds}
    for where, d in o.dead.items():
        kind = produced.kind_at.get(where, "unattributed")
        (dead_intel if d.get("stage") == "intel" else dead)[kind] += 1
        reasons.setdefault(kind, Counter())[reason_group(str(d.get("reason", "")))] += 1
    out: dict[str, dict[str, Any]] = {}
    for k in kinds:
        n = produced.delivered(k.name)
        problems = [p for check in k.checks for p in check(o)]
        out[k.name] = {
            "item": k.item, "what": k.what, "produced": n, "processed": processed[k.name],
            "dead_lettered": dead[k.name], "lost": n - processed[k.name] - dead[k.name],
            "intel_produced": produced.delivered(k.name, ("intel",)),
            "intel_dead_lettered": dead_intel[k.name],
            "refused_by_kafka": {r: c for (kk, r), c in produced.refused.items() if kk == k.name},
            "dead_letter_reasons": dict(reasons[k.name].most_common()),
            "problems": problems,
        }
    if dead["unattributed"] or dead_intel["unattributed"]:
        out["unattributed"] = {"dead_lettered": dead["unattributed"] + dead_intel["unattributed"],
                               "dead_letter_reasons": dict(reasons["unattributed"])}
    return out


def reason_group(reason: str) -> str:
    """A dead-letter reason without its particulars (numbers, quoted values): what to count by."""
    if reason.startswith("quarantined"):
        return "quarantined"
    head = re.split(r"[:(]", reason, maxsplit=1)[0].strip()
    head = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", head)
    return re.sub(r"\d+", "N", head)[:80] or "(no reason)"


def log_problems(logs: str) -> list[str]:
    """Uncaught exceptions a run logged without dying (a thread that died, e.g.)."""
    lines = [ln for ln in logs.splitlines() if "Traceback" in ln or "Exception in thread" in ln]
    return [f"a run logged an uncaught exception ({len(lines)}x): {lines[0][:200]}"] if lines else []
