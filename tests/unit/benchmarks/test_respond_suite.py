"""The respond suite's per-attack timing: the first executed action on the attacked device for the
attack's class, split into detection, service and actuator; held actions are counted, not timed."""

from __future__ import annotations

from twinguard.benchmarks.respond_suite import _per_attack, markdown
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.schemas.messages import Action, ActionResult

T0 = 1_800_000_000_000


def _rec(aid: str, device: str, threat: str, issued: int, status: str = "succeeded",
         executed: int | None = None, at: int | None = None, hold: str | None = None) -> ActionResult:
    req = Action(id=aid, threat_id="t", device_id=device, action="quarantine", target=device,
                 tier="auto", dry_run=False, reason="r", issued_at=issued, threat=threat)
    return ActionResult(action_id=aid, status=status, step="execute", reason="r",
                        at=at or issued, request=req, performs="quarantine", actuator="commands",
                        executed_at=executed, hold=hold, dry_run=False)


def test_the_first_executed_action_of_the_attacks_class_times_it() -> None:
    labels = [AttackLabel("d1", "brute_force", T0, T0 + 20_000),
              AttackLabel("d2", "dos", T0, T0 + 20_000)]
    latest = {r.action_id: r for r in [
        _rec("a", "d1", "brute_force", T0 + 900, executed=T0 + 950, at=T0 + 960),
        _rec("b", "d1", "brute_force", T0 + 500, executed=T0 + 520, at=T0 + 530),  # first one
        _rec("c", "d1", "scan", T0 + 100, executed=T0 + 110, at=T0 + 120),  # another class
        _rec("e", "d1", "brute_force", T0 - 5_000, executed=T0 - 4_000),  # before the attack
        _rec("f", "d2", "dos", T0 + 300, status="pending", hold="approval")]}
    rows = _per_attack(latest, labels)
    assert rows[0] == {"device_id": "d1", "threat": "brute_force", "actions": 2,
                       "action": "quarantine", "latency_ms": 530, "detect_ms": 500,
                       "service_ms": 20, "actuator_ms": 10}
    assert rows[1] == {"device_id": "d2", "threat": "dos", "actions": 1,
                       "held": ["pending (approval)"]}


def test_a_reverted_action_counts_from_its_execution() -> None:
    labels = [AttackLabel("d1", "brute_force", T0, T0 + 20_000)]
    latest = {"a": _rec("a", "d1", "brute_force", T0 + 400, status="reverted", executed=T0 + 450,
                        at=T0 + 60_000)}
    assert _per_attack(latest, labels)[0]["latency_ms"] == 450


def test_the_results_section_says_what_was_measured() -> None:
    text = "\n".join(markdown({
        "attack_to_action": {"latency_ms": {"p50": 340, "p99": 600, "n": 2}, "attacks": 11,
                             "devices": 120, "definition": "def"},
        "through_the_guard": {"burst_actions_per_s": 450.2, "burst_trials": [{}, {}, {}],
                              "burst_actions": 500}, "loadavg_at_start": [7.0, 8.5, 5.5]}))
    assert "p50 **340 ms**, p99 **600 ms** over 2 of 11 attacks" in text
    assert "**450 actions/s** (median of 3 bursts of 500)" in text and "[7.0, 8.5, 5.5]" in text
