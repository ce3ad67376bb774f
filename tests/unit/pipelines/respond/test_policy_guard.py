"""Response policy (tiers, life-critical fail-safe) and the blast-radius guard and rate limits."""

from __future__ import annotations

import pytest

from twinguard.pipelines.respond.guard import Acted, BlastRadiusGuard, RateLimiter
from twinguard.pipelines.respond.policy import plan
from twinguard.pipelines.respond.settings import RespondConfig

CFG = RespondConfig()


def test_the_dataflow_tier_holds_unless_configured() -> None:
    p = plan("rate_limit", "auto", "smart_meter", CFG)
    assert (p.action, p.actuator, p.tier) == ("rate_limit", "commands", "auto")
    assert "tier auto (threat policy)" in p.reason
    cfg = RespondConfig(tiers={"rate_limit:smart_meter": "approval"})
    assert plan("rate_limit", "auto", "smart_meter", cfg).tier == "approval"
    assert plan("rate_limit", "auto", "thermostat", cfg).tier == "auto"


def test_the_threat_class_explains_and_may_choose_the_tier() -> None:
    cfg = RespondConfig(tiers={"quarantine@brute_force": "approval", "quarantine": "auto"})
    p = plan("quarantine", "auto", "smart_meter", cfg, "brute_force")
    assert p.tier == "approval" and p.reason.startswith("for a brute_force threat; ")
    assert "[respond.tiers] quarantine@brute_force" in p.reason
    assert plan("quarantine", "approval", "smart_meter", cfg, "dos").tier == "auto"
    # the device type is more specific than the threat class
    cfg = RespondConfig(tiers={"quarantine@dos": "approval", "quarantine:smart_meter": "auto"})
    assert plan("quarantine", "auto", "smart_meter", cfg, "dos").tier == "auto"


def test_life_critical_types_are_never_cut_off() -> None:
    for action in ("quarantine", "lock_credentials", "rotate_key", "block_ip", "rate_limit"):
        p = plan(action, "auto", "infusion_pump", CFG)
        assert (p.action, p.actuator, p.tier) == ("failsafe", "commands", "approval")
        assert "infusion_pump is life-critical: never cut off" in p.reason
    # even a configured auto tier cannot make a life-critical action unattended
    cfg = RespondConfig(tiers={"investigate": "auto"})
    assert plan("investigate", "auto", "pump_plc", cfg).tier == "approval"


def test_an_unknown_device_type_waits_for_approval() -> None:
    p = plan("quarantine", "auto", None, CFG)
    assert p.tier == "approval" and "device type unknown" in p.reason


def test_a_bad_configured_tier_says_which_key() -> None:
    with pytest.raises(ValueError, match=r"\[respond.tiers\] quarantine: tier must be auto or approval"):
        plan("quarantine", "auto", "smart_meter", RespondConfig(tiers={"quarantine": "yes"}))


def test_guard_counts_devices_and_type_share_within_the_window() -> None:
    guard = BlastRadiusGuard(max_devices=3, max_share=0.25, window_ms=60_000)
    acted = [Acted(f"m{i}", "smart_meter", 1000 * i) for i in range(3)]
    fleet = {"smart_meter": 100, "thermostat": 8}
    assert "3 devices already acted on within 1 min (limit 3)" in (
        guard.refuse("m9", "smart_meter", acted, fleet, 5000) or "")
    assert guard.refuse("m1", "smart_meter", acted, fleet, 5000) is None  # already acted on
    assert guard.refuse("m9", "smart_meter", acted, fleet, 62_500) is None  # two left the window
    t = [Acted("t0", "thermostat", 0), Acted("t1", "thermostat", 0)]
    assert "2 of 8 thermostat devices" in (guard.refuse("t2", "thermostat", t, fleet, 1) or "")
    assert guard.refuse("t2", "thermostat", t[:1], fleet, 1) is None
    tiny = {"thermostat": 2}  # a share below one device still allows one
    assert guard.refuse("t0", "thermostat", [], tiny, 1) is None


def test_rate_limiter_refills_over_time() -> None:
    rl = RateLimiter({"mqtt": 2.0})
    assert rl.take("mqtt", 0.0) and rl.take("mqtt", 0.0) and not rl.take("mqtt", 0.0)
    assert rl.take("mqtt", 30.0)  # one token per 30 s
    assert rl.take("webhook", 0.0)  # no limit configured
