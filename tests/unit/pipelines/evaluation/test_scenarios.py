"""The issue #4 measurement: macro-F1 and outcome pairs from an evaluation."""

from __future__ import annotations

import pytest

from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.evaluation.scenarios import macro_f1, outcome_pairs
from twinguard.pipelines.sim.labels import AttackLabel


def test_macro_f1_averages_the_true_classes() -> None:
    f1, per = macro_f1([("dos", "dos"), ("scan", "dos"), ("normal", "normal")])
    assert per == {"dos": pytest.approx(2 / 3), "scan": 0.0, "normal": 1.0}
    assert f1 == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_outcome_pairs_count_attacks_normal_devices_and_false_alarms() -> None:
    labels = [AttackLabel("a", "dos", 10_000, 20_000), AttackLabel("b", "scan", 10_000, 20_000)]
    threats = [
        {"id": "1", "device_id": "a", "threat": "dos", "window_start": 10_000, "window_end": 10_500},
        {"id": "2", "device_id": "b", "threat": "dos", "window_start": 10_000, "window_end": 10_500},
        {"id": "3", "device_id": "c", "threat": "hijack", "window_start": 0, "window_end": 900},
        {"id": "4", "device_id": "a", "threat": "cloning", "window_start": 90_000, "window_end": 95_000},
    ]
    pairs = outcome_pairs(evaluate(threats, labels, {"a", "b", "c", "d"}))
    assert sorted(pairs) == sorted([("dos", "dos"), ("scan", "dos"), ("normal", "cloning"),
                                    ("normal", "hijack"), ("normal", "normal")])
