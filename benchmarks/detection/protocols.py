"""One function per dataset: prepare (if needed), run the user commands, keep what the table needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinguard.benchmarks.detection.commands import CommandLog
from twinguard.benchmarks.detection.prepare import (
    NAB_LEARNING_SHARE,
    TON_CLASS_MAP,
    TON_TEST_SHARE,
    prepare_nab,
    prepare_ton,
)


def batadal(data: Path, work: Path, log: CommandLog) -> dict[str, Any]:
    """Learn baselines from dataset03 (no attacks), replay dataset04 (7 attacks) with them."""
    table = ["--time-col", "DATETIME", "--time-format", "%d/%m/%y %H", "--label-col", "ATT_FLAG",
             "--device", "c_town"]
    model, pred = work / "batadal_model", work / "batadal_dataset04_predictions.csv"
    log.twinguard("train", str(data / "BATADAL_dataset03.csv"), *table, "--out", str(model))
    log.twinguard("replay", str(data / "BATADAL_dataset04_fully_labeled.csv"), *table,
                  "--model", str(model), "--out", str(pred))
    result = log.evaluate(pred, work / "batadal_evaluation.json")
    return {
        "protocol": "learn from dataset03 (8,761 normal hours), replay dataset04 (4,177 hours, "
                    "7 attacks) with the learned baselines; one row = one hour, so row metrics are "
                    "precision/recall per hour; all 43 tags as signals of one device",
        "preparation": ["none: the files are read as they are"],
        "evaluation": _compact(result, keep_events=True),
    }


def nab(data: Path, work: Path, log: CommandLog) -> dict[str, Any]:
    """Each realKnownCause series: learning mode over NAB's probationary 15%, then judged."""
    series = prepare_nab(data, work)
    per_series = {}
    for s in series:
        pred = work / "nab" / f"{s.name}_predictions.csv"
        log.twinguard("replay", str(s.path), "--time-col", "timestamp", "--label-col", "label",
                      "--signals", "value", "--device", s.name, "--warmup-rows",
                      str(s.learning_rows), "--out", str(pred))
        result = log.evaluate(pred, work / "nab" / f"{s.name}_evaluation.json")
        per_series[s.name] = {"rows": s.rows, "windows": s.windows,
                              "duplicates_dropped": s.duplicates_dropped,
                              "learning_rows": s.learning_rows, **_compact(result)}
    return {
        "protocol": f"per series, no model: the first {NAB_LEARNING_SHARE:.0%} of rows (NAB's "
                    "probationary period) only learn (--warmup-rows); rows inside a NAB window "
                    "(combined_windows.json) are labelled anomaly; an event = one window",
        "preparation": ["sort by timestamp, drop repeated timestamps (keep first)",
                        "label = anomaly inside a combined_windows.json window, else normal"],
        "series": per_series,
        "totals": _totals(per_series.values()),
    }


def ton_iot(data: Path, work: Path, log: CommandLog) -> dict[str, Any]:
    """Leak-safe TON_IoT: supervised (train split -> model) and unsupervised (learning mode) runs."""
    splits = prepare_ton(data, work)
    per_device: dict[str, Any] = {}
    for s in splits:
        entry: dict[str, Any] = {"rows": s.rows, "distinct_rows": s.distinct_rows,
                                 "distinct_signal_vectors": s.distinct_signal_vectors,
                                 "train_rows": s.train_rows, "test_rows": s.test_rows,
                                 "test_classes": s.test_classes, "signals": list(s.signals)}
        per_device[s.device] = entry
        if s.test_rows == 0 or set(s.test_classes) <= {"normal"}:
            entry["skipped"] = "the test split has no attack rows"
            continue
        table = ["--time-col", "time_ms", "--label-col", "class", "--device", s.device,
                 "--signals", ",".join(s.signals)]
        model = work / "ton_iot" / f"{s.device}_model"
        log.twinguard("train", str(s.train), *table, "--out", str(model))
        for mode, extra in (("supervised", ["--model", str(model)]), ("unsupervised", [])):
            pred = work / "ton_iot" / f"{s.device}_{mode}_predictions.csv"
            log.twinguard("replay", str(s.test), *table, *extra, "--out", str(pred))
            result = log.evaluate(pred, work / "ton_iot" / f"{s.device}_{mode}_evaluation.json")
            entry[mode] = _compact(result)
    return {
        "protocol": "leak-safe: strings stripped and lower-cased (true/false -> 1/0), date and time "
                    "dropped, identical rows removed, split by a hash of the sensor values "
                    f"({1 - TON_TEST_SHARE:.0%} train / {TON_TEST_SHARE:.0%} test; equal readings "
                    "never on both sides), each side ordered by a content hash on a synthetic "
                    "1 row/s clock; supervised = `train` on the train split then replay the test "
                    "split with --model; unsupervised = replay the test split alone (learning mode, "
                    "first 100 rows learn)",
        "preparation": ["normalise strings, drop date/time, deduplicate, hash split, synthetic "
                        "clock (benchmarks/detection/prepare.py)",
                        f"class map: {TON_CLASS_MAP}"],
        "devices": per_device,
        "totals": {mode: _pooled_rows(e[mode] for e in per_device.values() if mode in e)
                   for mode in ("supervised", "unsupervised")},
    }


def _compact(result: dict[str, Any], keep_events: bool = False) -> dict[str, Any]:
    """The evaluation without its per-event list (kept only where events are few)."""
    events = {k: v for k, v in result["events"].items() if keep_events or k != "list"}
    return {"row_level": result["row_level"], "events": events,
            "false_alarms": result["false_alarms"], "threats_flagged": result["threats_flagged"]}


def _totals(results: Any) -> dict[str, Any]:
    results = list(results)
    alarms = sum(r["false_alarms"]["count"] for r in results)
    days = sum(r["false_alarms"]["normal_device_days"] for r in results)
    return {"events": sum(r["events"]["attacks"] for r in results),
            "detected": sum(r["events"]["detected"] for r in results),
            "false_alarms": alarms, "normal_device_days": round(days, 2),
            "false_alarms_per_device_day": round(alarms / days, 3) if days else None,
            **_pooled_rows(results)}


def _pooled_rows(results: Any) -> dict[str, Any]:
    """Row-level binary metrics pooled over several runs (sums of tp/fp/fn)."""
    tp = fp = fn = 0
    for r in results:
        b = r["row_level"]["binary"]
        tp, fp, fn = tp + b["tp"], fp + b["fp"], fn + b["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"rows_precision": round(precision, 3), "rows_recall": round(recall, 3),
            "rows_f1": round(f1, 3), "tp": tp, "fp": fp, "fn": fn}
