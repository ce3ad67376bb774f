"""Auditing a chaos run: every input accounted for, duplicates keep their ids, detections
compared with an undisturbed reference."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from twinguard.operators.batches import RawBatch
from twinguard.operators.io.kafka import read_topic, scan_topic
from twinguard.pipelines.chaos.model import Chunks
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.offline import run_batches


def audit_topics(cfg: Config, cooldown_ms: int) -> dict[str, Any]:
    """Accounting of the output topics against the telemetry topic (see the README's contracts)."""
    settings = cfg.kafka.client_settings()
    events_in = sum(kafka_admin.end_offsets(settings, cfg.topics.telemetry).values())
    twins: dict[bytes | None, dict[str, Any]] = {}
    for k, v in read_topic(settings, cfg.topics.twins, timeout_s=300):
        twins[k] = json.loads(v)  # compacted topic: the last value per key wins
    dead = {(d["topic"], d["partition"], d["offset"])
            for d in (json.loads(v) for _, v in read_topic(settings, cfg.topics.deadletter))}
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    processed = sum(int(t["version"]) for t in twins.values())
    return {
        "events_in": events_in,
        "processed": processed,
        "dead_lettered": len(dead),
        "lost": events_in - processed - len(dead),
        "devices": len(twins),
        **threat_duplicates(threats, cooldown_ms),
        "_threats": threats,
    }


def threat_duplicates(threats: list[dict[str, Any]], cooldown_ms: int) -> dict[str, Any]:
    """Re-emitted threats (same device, class, window) and whether they kept the first one's id."""
    first: dict[tuple[Any, ...], str] = {}
    dups = same = 0
    contents: dict[str, set[tuple[Any, ...]]] = {}
    for t in threats:
        key = (t["device_id"], t["threat"], t["window_start"], t["window_end"])
        contents.setdefault(t["id"], set()).add(key)
        if key in first:
            dups += 1
            same += first[key] == t["id"]
        else:
            first[key] = t["id"]
    return {
        "threats_total": len(threats),
        "threats_distinct": len(contents),
        "duplicates": dups,
        "duplicates_with_same_id": same,
        # one id, two different windows: a consumer de-duplicating by id keeps either
        "ids_with_conflicting_content": sorted(i for i, c in contents.items() if len(c) > 1),
        "realerts_within_cooldown": _realerts(first, cooldown_ms),
    }


def _realerts(first: dict[tuple[Any, ...], str], cooldown_ms: int) -> list[dict[str, Any]]:
    """Distinct threats of one device and class closer than the cooldown: one run never emits
    those, so they are a restart re-deciding a window differently (not de-duplicable by id)."""
    by_pair: dict[tuple[Any, Any], list[tuple[int, str]]] = {}
    for (dev, cls, _ws, we), tid in first.items():
        by_pair.setdefault((dev, cls), []).append((int(we), tid))
    out = []
    for (dev, cls), ends in by_pair.items():
        ends.sort()
        for (a, ida), (b, idb) in zip(ends, ends[1:], strict=False):
            if b - a < cooldown_ms and ida != idb:
                out.append({"device_id": dev, "threat": cls, "window_ends": [a, b],
                            "ids": [ida, idb]})
    return out


def reference_run(rt: Runtime, chunks: Chunks, parts: dict[bytes, int], order: list[int],
                  topic: str = "reference") -> dict[str, Any]:
    """The same input through the same decode + engine code in-process: no kills, no outage.

    Every message keeps its Kafka partition (the engine keeps one event-time mark per source
    partition); each chunk is fed as one batch per partition, in `order`, as a consumer polling the
    partitions in turn would.
    """
    def raws() -> Iterator[RawBatch]:
        next_offset: dict[int, int] = {}
        for part, keys, values in split_by_partition(chunks, parts, order):
            first = next_offset.get(part, 0)
            next_offset[part] = first + len(values)
            offsets = np.arange(first, first + len(values), dtype=np.int64)
            yield RawBatch(topic, part, offsets, list(keys), list(values))

    outputs = run_batches(raws(), rt).outputs
    return {"threats": [json.loads(o.value) for o in outputs if o.role == "threats"],
            "dead_lettered": sum(o.role == "deadletter" for o in outputs)}


def key_partitions(settings: dict[str, Any], topic: str, timeout_s: float = 300) -> dict[bytes, int]:
    """Kafka partition of every message key in `topic` (the producer's partitioner decided)."""
    return {m.key() or b"": m.partition() for m in scan_topic(settings, topic, timeout_s)}


def split_by_partition(chunks: Chunks, parts: dict[bytes, int], order: list[int]
                       ) -> Iterator[tuple[int, list[bytes], list[bytes]]]:
    """(partition, keys, values): each chunk as one sub-chunk per Kafka partition, in `order`."""
    for _, keys, values in chunks:
        for p in order:
            sel = [i for i, k in enumerate(keys) if parts.get(k, 0) == p]
            if sel:
                yield p, [keys[i] for i in sel], [values[i] for i in sel]


def order_sensitive_ids(rt: Runtime, make_chunks: Callable[[], Chunks], parts: dict[bytes, int],
                        ref_ids: set[str], topic: str) -> set[str]:
    """Threat ids whose presence changes when only the order in which the partitions' batches
    are fed changes (no kills, no clock): nondeterminism of the engine, not chaos damage."""
    order = sorted(set(parts.values()))
    if len(order) < 2:
        return set()
    run = reference_run(rt, make_chunks(), parts, order[::-1], topic)
    return {t["id"] for t in run["threats"]} ^ ref_ids


def comparability(changed: list[str], threats: list[dict[str, Any]], ref_model: str
                  ) -> list[str]:
    """Reasons the reference is not the same code and model as the runs (empty: comparable)."""
    out = []
    if changed:
        out.append(f"code or model changed while chaos ran ({', '.join(changed[:8])}"
                   f"{' ...' if len(changed) > 8 else ''}): restarted runs and the reference ran "
                   "different code; rerun on a quiet tree before judging detection")
    models = sorted({str(t.get("model_version")) for t in threats} - {ref_model})
    if models:
        out.append(f"threats were scored by model(s) {models}, the reference by {ref_model}: "
                   "threat ids include the model version, so none can match")
    return out


def compare_detection(got: list[dict[str, Any]], ref: list[dict[str, Any]],
                      disturbances: list[tuple[str, int, int]], order_sensitive: set[str],
                      window_ms: int) -> dict[str, Any]:
    """Distinct threat ids vs the reference. Each difference is located relative to the nearest
    disturbance (kill gap or outage), flagged if order-sensitive, and paired with its twin when
    the same device and class was alerted in the same or a neighbouring window, so its cause can
    be judged."""
    got_by = {t["id"]: t for t in got}
    ref_by = {t["id"]: t for t in ref}
    missing = sorted(ref_by.keys() - got_by.keys())
    extra = sorted(got_by.keys() - ref_by.keys())
    diffs = [_locate("missing", ref_by[i], disturbances) for i in missing]
    diffs += [_locate("extra", got_by[i], disturbances) for i in extra]
    moved = _pair_moved(diffs, window_ms)
    for d in diffs:
        d["order_sensitive"] = d["id"] in order_sensitive
    diffs.sort(key=lambda d: (d["window_end"], d["side"]))
    return {
        "threats_reference": len(ref_by),
        "threats_missing_vs_reference": missing,
        "threats_extra_vs_reference": extra,
        "threats_moved": moved,
        "reference_order_sensitive": sorted(order_sensitive),
        "differences_not_order_sensitive": [d["id"] for d in diffs if not d["order_sensitive"]],
        "detection_differences": diffs,
    }


def _pair_moved(diffs: list[dict[str, Any]], window_ms: int) -> list[dict[str, Any]]:
    """Missing/extra pairs of one device and class whose windows start at most one window apart:
    the same detection attributed to another window or firing time (so its id differs)."""
    extras = [d for d in diffs if d["side"] == "extra"]
    pairs = []
    for m in (d for d in diffs if d["side"] == "missing"):
        for x in extras:
            if (x["device_id"], x["threat"]) == (m["device_id"], m["threat"]) and \
                    abs(x["window_start"] - m["window_start"]) <= window_ms and "moved" not in x:
                m["moved"] = x["moved"] = True
                pairs.append({"device_id": m["device_id"], "threat": m["threat"],
                              "reference_window": [m["window_start"], m["window_end"]],
                              "chaos_window": [x["window_start"], x["window_end"]]})
                break
    return pairs


def _locate(side: str, t: dict[str, Any], disturbances: list[tuple[str, int, int]]
            ) -> dict[str, Any]:
    """A differing threat with the disturbance(s) nearest its window ("kill+outage" on a tie)."""
    ws, we = int(t["window_start"]), int(t["window_end"])
    # seconds from each disturbance to the window; 0 = they overlap, < 0 = window before it
    gaps = [(0.0 if ws <= b and a <= we else (ws - b) / 1000 if ws > b else (we - a) / 1000, kind)
            for kind, a, b in disturbances]
    best = min((abs(g) for g, _ in gaps), default=math.inf)
    nearest = [(g, k) for g, k in gaps if abs(g) == best]
    return {"side": side, "id": t["id"], "device_id": t["device_id"], "threat": t["threat"],
            "window_start": ws, "window_end": we, "detectors": t.get("detectors", []),
            "nearest_disturbance": "+".join(sorted({k for _, k in nearest})) or "none",
            "seconds_after_disturbance": round(nearest[0][0], 1) if nearest else None}


def verdict(report: dict[str, Any]) -> bool:
    """Pass: nothing lost, every re-emitted threat kept its id, no run failed on its own."""
    return (report["lost"] == 0 and report["duplicates_with_same_id"] == report["duplicates"]
            and not report["failures"])
