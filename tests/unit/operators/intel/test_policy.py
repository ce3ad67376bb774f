"""The policy grammar: cohorts, rules, and what the intel table refuses with a reason."""

from __future__ import annotations

import json

import pytest

from twinguard.operators.intel.policy import Cohort, parse_cohort
from twinguard.operators.intel.table import IntelRejectError, IntelTable, parse_intel


def _policy(indicator: str, **rule: object) -> bytes:
    return json.dumps({"indicator": indicator, "kind": "policy", "policy": rule}).encode()


def test_a_cohort_is_a_type_and_or_a_firmware_in_one_canonical_form() -> None:
    c = parse_cohort(" fw=4.2.1 , type=thermostat")
    assert c == Cohort("thermostat", "4.2.1") and c.indicator == "type=thermostat,fw=4.2.1"
    assert c.matches("thermostat", "4.2.1") and not c.matches("thermostat", "4.2.0")
    assert parse_cohort("fw=4.2.1").matches("pump_plc", "4.2.1")
    assert not parse_cohort("type=thermostat").matches("pump_plc", None)
    entry = parse_intel(_policy("fw=1.0,type=plc", anomaly_z=3), b"fw=1.0,type=plc")
    assert entry is not None and entry.indicator == "type=plc,fw=1.0"


@pytest.mark.parametrize(("value", "reason"), [
    (_policy("firmware=4.2.1", anomaly_z=3), "expected 'type=<device type>'"),
    (_policy("fw=", anomaly_z=3), "expected 'type=<device type>'"),
    (_policy("fw=1,fw=2", anomaly_z=3), "names fw twice"),
    (_policy("fw=1"), "policy entry without a change"),
    (_policy("fw=1", tier="auto"), "set policy.loosen = true"),
    (_policy("fw=1", model_threshold=1.5), "schema"),
    (_policy("fw=1", threshold=0.5), "schema"),  # a misspelt key is refused, not ignored
    (json.dumps({"indicator": "10.0.0.1", "kind": "ip", "policy": {"anomaly_z": 3}}).encode(),
     "only kind 'policy' may"),
])
def test_malformed_policies_are_rejected_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(IntelRejectError, match=reason):
        parse_intel(value)


def test_the_index_finds_the_live_policies_of_a_device() -> None:
    table = IntelTable()
    for raw, expires in ((_policy("fw=4.2.1", anomaly_z=3), 1000),
                         (_policy("type=thermostat", tier="approval"), None),
                         (_policy("type=pump_plc", anomaly_z=2), None)):
        doc = json.loads(raw)
        doc["expires_at"] = expires
        entry = parse_intel(json.dumps({k: v for k, v in doc.items() if v is not None}).encode())
        assert entry is not None
        table.apply(entry.indicator, entry)
    table.publish()
    live = table.current.policies_for("thermostat", "4.2.1", at_ms=999)
    assert [name for name, _ in live] == ["fw=4.2.1", "type=thermostat"]
    assert [name for name, _ in table.current.policies_for("thermostat", "4.2.1", 1000)] == [
        "type=thermostat"]  # expired at its event time
    table.apply("type=thermostat", None)  # withdrawn
    table.publish()
    assert table.current.policies_for("thermostat", "4.2.0", 0) == []
