"""Fuzz accounting: produced = processed + dead-lettered per kind, reasons grouped, checks applied."""

from __future__ import annotations

from twinguard.pipelines.fuzz import checks
from twinguard.pipelines.fuzz.audit import account, log_problems, reason_group
from twinguard.pipelines.fuzz.model import Kind, Outcome
from twinguard.pipelines.fuzz.produce import Produced


def outcome(**kw: object) -> Outcome:
    base: dict[str, object] = {"twins": {}, "threats": [], "dead": {}, "logs": ""}
    return Outcome(**{**base, **kw})  # type: ignore[arg-type]


def test_each_kind_is_accounted_by_its_devices_and_its_offsets() -> None:
    a, b = Kind("a", "1", "x"), Kind("b", "2", "y")
    produced = Produced()
    for off in range(5):
        produced.kind_at[("t", 0, off)] = "a"
    produced.kind_at[("t", 1, 0)] = "b"
    produced.counts.update({("a", "telemetry"): 4, ("a", "activity"): 1, ("b", "telemetry"): 1})
    o = outcome(twins={"fz-a-1": {"version": 2, "commands": 1}, "other": {"version": 9}},
                dead={("t", 0, 3): {"reason": "malformed JSON: x", "stage": "decode"},
                      ("t", 9, 9): {"reason": "schema: y", "stage": "decode"}})
    rows = account([a, b], produced, o)
    assert (rows["a"]["produced"], rows["a"]["processed"], rows["a"]["dead_lettered"],
            rows["a"]["lost"]) == (5, 3, 1, 1)
    assert rows["b"]["lost"] == 1 and rows["a"]["dead_letter_reasons"] == {"malformed JSON": 1}
    assert rows["unattributed"]["dead_lettered"] == 1


def test_reasons_are_grouped_without_their_particulars() -> None:
    assert reason_group("quarantined key 'x' (7 rejects ...); malformed JSON: y") == "quarantined"
    assert reason_group("message of 85110 bytes exceeds pipeline.max_message_bytes=65536") == \
        "message of N bytes exceeds pipeline.max_message_bytes=N"
    assert reason_group("unknown device type 'toaster' (known: a, b)") == "unknown device type '…'"


def test_checks_find_what_they_promise() -> None:
    twins = {"fz-identity-0": {"fw": "9.9.9-evil", "src_ip": "203.0.113.66",
                               "device_type": "thermostat"},
             "fz-intel-bystander-7": {"risk_reasons": ["traffic with intel-listed 10.0.0.10"]}}
    o = outcome(twins=twins, logs="Exception in thread twinguard-intel:\nTraceback")
    assert checks.identity_kept(o) and checks.no_slash0_contacts(o)
    assert checks.intel_reader_alive(o) and log_problems(o.logs)
    ok = outcome(twins={"fz-identity-0": {"fw": "4.2.0", "src_ip": "10.1.0.1",
                                          "device_type": "thermostat"}})
    assert not checks.identity_kept(ok) and not checks.intel_reader_alive(ok)
