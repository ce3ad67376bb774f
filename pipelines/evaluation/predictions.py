"""Score a replay's predictions file against its labels: rows, attack events, time to detect, false alarms.

Never point-adjusted: row metrics count every row as it was flagged; an attack event (a maximal run of
consecutive non-normal rows of one device with the same label) counts as detected when one of its own
rows (or a row within the optional slack after it) is flagged, and its time to detect is the first such
flag's time minus the event's first row time. False alarms are maximal runs of flagged rows outside
events and their slack, reported per device-day of normal data (normal rows x the device's typical
sampling interval).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from twinguard.pipelines.tables.read import normalise_label
from twinguard.pipelines.text import printable

NORMAL = "normal"
_COLUMNS = ("row", "time", "device", "flag", "threat", "label")
_DAY_MS = 86_400_000


class PredictionsError(ValueError):
    """The predictions file cannot be evaluated; the message says what to fix."""


@dataclass(frozen=True)
class Slack:
    """How long after an event's last row a flag still counts as detecting it (rows or seconds)."""

    rows: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Predictions:
    """One replay's output, sorted by device, then time, then input row."""

    source: str
    time_ms: np.ndarray
    devices: np.ndarray
    flags: np.ndarray
    threats: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class AttackEvent:
    device: str
    label: str
    first: int      # index of the event's first row in Predictions order
    last: int       # index of its last row
    reach: int      # last index a detecting flag may have (last + slack, before the next event)


def parse_class_map(text: str | None) -> dict[str, str]:
    """`ddos=dos,password=brute_force` -> {"ddos": "dos", "password": "brute_force"}."""
    pairs: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise PredictionsError(f"--class-map item {item.strip()!r} is not label=class")
        pairs[src.strip().lower()] = dst.strip().lower()
    return pairs


def load_predictions(path: str | Path, class_map: dict[str, str] | None = None) -> Predictions:
    """Read a `twinguard replay` output (csv or parquet) that carries a label column."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such file")
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(
            path, schema_overrides={"device": pl.String, "threat": pl.String, "label": pl.String})
    except (pl.exceptions.PolarsError, OSError) as e:
        raise PredictionsError(f"{path}: cannot read: {str(e)[:200]}") from e
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        hint = " (replay with --label-col to keep the labels)" if "label" in missing else ""
        raise PredictionsError(f"{path}: missing columns {missing}{hint}")
    frame = frame.sort(["device", "time", "row"])
    cmap = class_map or {}
    labels = [_class(v, cmap) for v in frame.get_column("label").cast(pl.String).to_list()]
    flags = frame.get_column("flag").cast(pl.Int64).fill_null(0).to_numpy() != 0
    threats = [_class(v, {}) for v in frame.get_column("threat").cast(pl.String).to_list()]
    return Predictions(
        source=str(path), time_ms=frame.get_column("time").cast(pl.Int64).to_numpy(),
        devices=np.asarray(frame.get_column("device").cast(pl.String).to_list(), dtype=object),
        flags=flags, threats=np.asarray(threats, dtype=object),
        labels=np.asarray(labels, dtype=object))


def _class(value: str | None, cmap: dict[str, str]) -> str:
    text = normalise_label(value)
    return cmap.get(text, text)


def evaluate_predictions(pred: Predictions, slack: Slack = Slack()) -> dict[str, Any]:
    """All metrics of one predictions table, as a JSON-ready dict."""
    attack = pred.labels != NORMAL
    predicted = np.where(pred.flags, pred.threats, NORMAL)
    events = attack_events(pred, slack)
    covered = np.zeros(len(pred.flags), dtype=bool)
    for e in events:
        covered[e.first:e.reach + 1] = True
    results = [_event_result(pred, e) for e in events]
    classes_labelled = bool(set(pred.labels[attack]) - {"anomaly"})
    alarms = _runs(pred.flags & ~covered, pred.devices)
    device_days = normal_device_days(pred)
    ttd = sorted(r["time_to_detect_s"] for r in results if r["detected"])
    return {
        "predictions": pred.source,
        "rows": len(pred.flags),
        "devices": len(set(pred.devices)),
        "slack": {"rows": slack.rows, "seconds": slack.seconds},
        "row_level": {
            "binary": binary_metrics(attack, pred.flags),
            "classes_labelled": classes_labelled,
            **(per_class_metrics(pred.labels, predicted) if classes_labelled else {}),
        },
        "events": {
            "attacks": len(results),
            "detected": sum(r["detected"] for r in results),
            "detected_right_class": sum(r["right_class"] for r in results) if classes_labelled
            else None,
            "per_class": _events_per_class(results),
            "time_to_detect_s": _quantiles(ttd),
            "list": results,
        },
        "false_alarms": {
            "count": alarms,
            "normal_device_days": round(device_days, 3),
            "per_device_day": round(alarms / device_days, 3) if device_days > 0 else None,
        },
        "threats_flagged": dict(Counter(pred.threats[pred.flags].tolist())),
    }


def attack_events(pred: Predictions, slack: Slack) -> list[AttackEvent]:
    """Maximal runs of consecutive rows of one device with the same non-normal label."""
    n = len(pred.labels)
    events: list[AttackEvent] = []
    i = 0
    while i < n:
        if pred.labels[i] == NORMAL:
            i += 1
            continue
        j = i
        while j + 1 < n and pred.devices[j + 1] == pred.devices[i] and pred.labels[j + 1] == pred.labels[i]:
            j += 1
        events.append(AttackEvent(str(pred.devices[i]), str(pred.labels[i]), i, j,
                                  _reach(pred, j, slack)))
        i = j + 1
    return events


def _reach(pred: Predictions, last: int, slack: Slack) -> int:
    """Last row index of the slack after an event: same device, normal rows only."""
    reach = last
    limit_ms = pred.time_ms[last] + slack.seconds * 1000.0
    while reach + 1 < len(pred.labels) and pred.devices[reach + 1] == pred.devices[last] \
            and pred.labels[reach + 1] == NORMAL:
        within_rows = reach + 1 - last <= slack.rows
        within_time = slack.seconds > 0 and pred.time_ms[reach + 1] <= limit_ms
        if not (within_rows or within_time):
            break
        reach += 1
    return reach


def _event_result(pred: Predictions, e: AttackEvent) -> dict[str, Any]:
    hits = np.flatnonzero(pred.flags[e.first:e.reach + 1]) + e.first
    first_hit = int(hits[0]) if hits.size else None
    right = bool(np.any(pred.threats[hits] == e.label)) if hits.size else False
    start = int(pred.time_ms[e.first])
    return {
        "device": e.device, "label": e.label, "start_ms": start,
        "end_ms": int(pred.time_ms[e.last]), "rows": e.last - e.first + 1,
        "detected": first_hit is not None, "right_class": right,
        "time_to_detect_s": (int(pred.time_ms[first_hit]) - start) / 1000.0
        if first_hit is not None else None,
        "threats": sorted(set(pred.threats[hits].tolist())),
    }


def _events_per_class(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in results:
        c = out.setdefault(r["label"], {"attacks": 0, "detected": 0, "right_class": 0})
        c["attacks"] += 1
        c["detected"] += int(r["detected"])
        c["right_class"] += int(r["right_class"])
    return out


def _runs(mask: np.ndarray, devices: np.ndarray) -> int:
    """Number of maximal runs of True in `mask` that do not cross a device boundary."""
    if not mask.any():
        return 0
    starts = mask.copy()
    starts[1:] &= ~(mask[:-1] & (devices[1:] == devices[:-1]))
    return int(starts.sum())


def normal_device_days(pred: Predictions) -> float:
    """Σ over devices of normal rows x the device's median positive sampling interval, in days."""
    n = len(pred.devices)
    if n == 0:
        return 0.0
    starts = np.r_[0, np.flatnonzero(pred.devices[1:] != pred.devices[:-1]) + 1, n]
    total = 0.0
    for lo, hi in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):  # rows sorted by device
        gaps = np.diff(pred.time_ms[lo:hi])
        gaps = gaps[gaps > 0]
        if gaps.size:
            normal_rows = float(np.sum(pred.labels[lo:hi] == NORMAL))
            total += normal_rows * float(np.median(gaps)) / _DAY_MS
    return total


def binary_metrics(truth: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Precision/recall/F1 of flag vs label != normal, one row = one sample."""
    tp = int(np.sum(truth & flagged))
    fp = int(np.sum(~truth & flagged))
    fn = int(np.sum(truth & ~flagged))
    tn = int(np.sum(~truth & ~flagged))
    return {**_prf(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def per_class_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Per-class P/R/F1 and macro-F1 over every class seen in labels or predictions (normal too)."""
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()))
    per_class = {}
    for c in classes:
        t, p = truth == c, predicted == c
        tp, fp, fn = int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
        per_class[c] = {**_prf(tp, fp, fn), "support": int(np.sum(t)), "predicted": int(np.sum(p))}
    macro = float(np.mean([m["f1"] for m in per_class.values()])) if per_class else 0.0
    return {"per_class": per_class, "macro_f1": round(macro, 4)}


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    arr = np.asarray(values)
    return {"median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)),
            "max": float(arr.max())}


def format_report(result: dict[str, Any]) -> str:
    """The human table printed by `twinguard evaluate --predictions`."""
    rows = result["row_level"]
    b, ev, fa = rows["binary"], result["events"], result["false_alarms"]
    ttd = ev["time_to_detect_s"]
    lines = [
        f"{printable(result['predictions'])}: {result['rows']} rows, {result['devices']} devices",
        f"rows     attack vs normal  P={b['precision']:.3f} R={b['recall']:.3f} F1={b['f1']:.3f} "
        f"(tp={b['tp']} fp={b['fp']} fn={b['fn']} tn={b['tn']})",
    ]
    if rows["classes_labelled"]:
        lines.append(f"rows     macro-F1 over classes {rows['macro_f1']:.3f}")
        lines.append(f"  {'class':<24}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}{'predicted':>11}")
        for c, m in rows["per_class"].items():
            lines.append(f"  {printable(c):<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
                         f"{m['support']:>9}{m['predicted']:>11}")
    right = f", right class {ev['detected_right_class']}" if ev["detected_right_class"] is not None \
        else ""
    lines.append(f"events   attacks detected {ev['detected']} / {ev['attacks']}{right}")
    for c, m in ev["per_class"].items():
        lines.append(f"  {printable(c):<24}{m['detected']:>5} / {m['attacks']}")
    if ttd["median"] is not None:
        lines.append(f"time to detect  median {_dur(ttd['median'])}  p95 {_dur(ttd['p95'])}  "
                     f"max {_dur(ttd['max'])}")
    per_day = "n/a" if fa["per_device_day"] is None else f"{fa['per_device_day']:.3f}"
    lines.append(f"false alarms {fa['count']} over {fa['normal_device_days']:.2f} normal "
                 f"device-days = {per_day} per device-day")
    return "\n".join(lines)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def evaluate_file(path: str, out: str | None, slack: Slack, class_map: str | None) -> int:
    """`twinguard evaluate --predictions`: print the table, write JSON when asked."""
    import json  # noqa: PLC0415 - only this entry point writes JSON

    result = evaluate_predictions(load_predictions(path, parse_class_map(class_map)), slack)
    result["class_map"] = parse_class_map(class_map)
    print(format_report(result))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {out}")
    return 0
