"""Feedback -> labels, the time split, and the champion/challenger rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinguard.pipelines.archive.labels import INDEX, ArchiveError, labelled_windows
from twinguard.pipelines.archive.records import FEATURE_PREFIX
from twinguard.pipelines.archive.retrain import compare, time_split
from twinguard.pipelines.archive.store import ArchiveStore
from twinguard.schemas.features import FEATURE_NAMES

COOLDOWN = 60_000


def _window(device: str, end: int, decided: str, marker: float) -> dict[str, Any]:
    row: dict[str, Any] = {"device_id": device, "device_type": "thermostat", "fw": None,
                           "risk": 0.0, "window_start": end - 10_000, "window_end": end,
                           "model_class": decided, "model_probability": 0.9, "decided": decided,
                           "model_version": "m", "feature_schema": "s", "_partition": 0,
                           "_offset": end}
    row.update({FEATURE_PREFIX + n: marker for n in FEATURE_NAMES})
    return row


def _threat(tid: str, device: str, end: int, cls: str) -> dict[str, Any]:
    return {"id": tid, "device_id": device, "device_type": "thermostat", "threat": cls,
            "severity": "high", "score": 0.9, "model_version": "m", "window_start": end - 10_000,
            "window_end": end, "detected_at": end, "_partition": 0, "_offset": end}


def _fb(tid: str, verdict: str, ts: int, cls: str | None = None) -> dict[str, Any]:
    return {"threat_id": tid, "verdict": verdict, "analyst": "a", "ts": ts, "threat": cls,
            "note": "", "_partition": 0, "_offset": ts}


def test_feedback_labels_flagged_windows_and_unflagged_ones_count_as_weighted_normal(
        tmp_path: Path) -> None:
    windows = [
        _window("a", 10_000, "normal", 0.0),
        _window("a", 20_000, "dos", 1.0),  # threat t1, analyst: true positive, really a scan
        _window("a", 30_000, "dos", 2.0),  # folded into t1 by the cooldown: same verdict
        _window("b", 20_000, "dos", 3.0),  # threat t2: false positive -> normal
        _window("c", 20_000, "replay", 4.0),  # threat t3: nobody reviewed it -> left out
        _window("a", 200_000, "dos", 5.0),  # past t1's cooldown, no threat of its own: left out
    ]
    threats = [_threat("t1", "a", 20_000, "dos"), _threat("t2", "b", 20_000, "dos"),
               _threat("t3", "c", 20_000, "replay")]
    feedback = [_fb("t1", "false_positive", 1), _fb("t1", "true_positive", 2, "scan"),
                _fb("t2", "false_positive", 1), _fb("zz", "true_positive", 1)]
    store = ArchiveStore(tmp_path)
    store.append({("windows", "d"): windows, ("threats", "d"): threats,
                  ("feedback", "d"): feedback}, {})

    got = labelled_windows(tmp_path, COOLDOWN, unlabelled_weight=0.5)
    by_marker = {float(x[0]): (int(y), float(w)) for x, y, w in zip(got.x, got.y, got.weight,
                                                                     strict=True)}
    assert by_marker == {0.0: (INDEX["normal"], 0.5), 1.0: (INDEX["scan"], 1.0),
                         2.0: (INDEX["scan"], 1.0), 3.0: (INDEX["normal"], 1.0)}
    assert got.summary == {"unflagged_as_normal": 1, "true_positive": 2,
                           "false_or_benign_as_normal": 1, "unreviewed_left_out": 2}


def test_an_empty_or_missing_archive_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="twinguard archive"):
        labelled_windows(tmp_path, COOLDOWN, 0.5)
    ArchiveStore(tmp_path).append({}, {"t": {0: 1}})
    with pytest.raises(ArchiveError, match="--emit-windows"):
        labelled_windows(tmp_path, COOLDOWN, 0.5)


def test_the_hold_out_is_the_latest_time_not_a_random_sample(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.append({("windows", "d"): [_window("a", t * 10_000, "normal", float(t))
                                     for t in range(1, 11)]}, {})
    data = labelled_windows(tmp_path, COOLDOWN, 0.5)
    train, hold = time_split(data, 0.2)
    assert data.window_end[train].max() < data.window_end[hold].min()
    assert hold.sum() == 2


def test_a_challenger_must_raise_macro_f1_without_losing_a_class() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    champion = np.array([0, 0, 0, 0, 2, 2, 2, 2])  # the new variant (1) mistyped as 2
    better = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    assert compare(y, champion, better, 0.05).promoted
    trades = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # wins class 1, loses class 2 entirely
    v = compare(y, champion, trades, 0.05)
    assert not v.promoted and "loses more than 0.05 F1 on" in v.reason
    same = compare(y, champion, champion, 0.05)
    assert not same.promoted and "is not above" in same.reason
    assert "macro-F1" in same.table and "champion F1" in same.table
