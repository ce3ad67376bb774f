"""Policies applied: the tightest setting wins, loosening only when said, tiers on actions."""

from __future__ import annotations

from twinguard.operators.detect.cohorts import effective, with_tier
from twinguard.operators.detect.policy import response_actions
from twinguard.operators.settings import DetectionConfig
from twinguard.schemas.messages import PolicyRule

BASE = DetectionConfig()  # model_threshold 0.8, anomaly_z 5, anomaly_volume_z 10


def test_the_tightest_rule_wins_and_volumes_scale_with_the_anomaly_threshold() -> None:
    eff = effective(BASE, [("fw=1", PolicyRule(model_threshold=0.6, anomaly_z=4.0)),
                           ("type=plc", PolicyRule(model_threshold=0.5, tier="approval"))])
    assert eff is not None
    d = eff.detection
    assert (d.model_threshold, d.anomaly_z, d.anomaly_volume_z) == (0.5, 4.0, 8.0)
    assert eff.tier == "approval" and "fw=1; type=plc" in eff.why
    assert d.auth_fail_min == BASE.auth_fail_min  # everything else as configured
    assert effective(BASE, []) is None


def test_a_rule_never_loosens_below_the_configuration_unless_it_says_so() -> None:
    eff = effective(BASE, [("fw=1", PolicyRule(model_threshold=0.95, anomaly_z=9.0))])
    assert eff is not None and (eff.detection.model_threshold, eff.detection.anomaly_z) == (0.8, 5.0)
    loose = effective(BASE, [("fw=1", PolicyRule(model_threshold=0.95, loosen=True))])
    assert loose is not None and loose.detection.model_threshold == 0.95
    both = effective(BASE, [("fw=1", PolicyRule(model_threshold=0.95, loosen=True)),
                            ("type=plc", PolicyRule(model_threshold=0.7))])
    assert both is not None and both.detection.model_threshold == 0.7  # tightening wins


def test_tiers_hold_or_release_actions_but_never_an_unaimed_block() -> None:
    acts = response_actions("brute_force", "t1", "dev-1", 0, dry_run=True, peers={})
    assert [a.tier for a in acts] == ["auto", "approval"]  # the block has no observed source
    held = with_tier(acts, "approval", "intel policy fw=1")
    assert [a.tier for a in held] == ["approval", "approval"]
    assert held[0].reason.endswith("intel policy fw=1")
    released = with_tier(response_actions("scan", "t2", "dev-1", 0, True), "auto", "p")
    assert [a.tier for a in released] == ["auto"]
    assert [a.tier for a in with_tier(acts, "auto", "p")] == ["auto", "approval"]
    assert with_tier(acts, None, "p") == acts
