"""The twin shows the device's response state: folded from made action results through the shard
logic the dataflow runs (an executed containment enters, a revert clears it, bad records dead-letter)."""

from __future__ import annotations

import json

import msgspec
import numpy as np

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.results import decode_results
from twinguard.operators.decode.telemetry import decode_batch
from twinguard.operators.twin.logic import ShardLogic
from twinguard.pipelines.flow import Runtime
from twinguard.schemas.messages import Action, ActionResult, Telemetry, TwinState, canonical_bytes

T0 = 1_795_000_000_000
DEV = "thermostat-000001"


def _result(action_id: str, status: str, performs: str = "quarantine", step: str = "execute",
            dry_run: bool = False, at: int = T0, **kw: object) -> ActionResult:
    req = Action(id=action_id, threat_id="t1", device_id=DEV, action=performs, target=DEV,
                 tier="auto", dry_run=dry_run, reason="test", issued_at=T0, threat="brute_force")
    return ActionResult(action_id=action_id, status=status, step=step, reason="test", at=at,
                        request=req, performs=performs, actuator="mqtt", dry_run=dry_run, **kw)


def _feed(logic: ShardLogic, rt: Runtime, recs: list[ActionResult | bytes]) -> list[OutMsg]:
    values: list[bytes | None] = [r if isinstance(r, bytes) else msgspec.json.encode(r) for r in recs]
    raw = RawBatch("twinguard.action_results", 0, np.arange(len(values)), [b"k"] * len(values), values)
    decoded = decode_results(raw, rt.decode, now_ms=T0)
    out = list(decoded.errs)
    for _, batch in decoded.by_device(rt.cfg.pipeline.shards):
        out += logic.on_batch([batch])[0]
    return out


def _twins(out: list[OutMsg]) -> list[TwinState]:
    return [msgspec.json.decode(m.value, type=TwinState) for m in out if m.role == "twins"]


def _logic(rt: Runtime) -> ShardLogic:
    logic = ShardLogic(rt.engine, None)
    doc = {"device_id": DEV, "type": "thermostat", "ts": T0, "seq": 1,
           "signals": {"temperature_c": 20.0, "setpoint_c": 21.0, "humidity_pct": 40.0, "heating": 0.0}}
    doc["sig"] = rt.keys.sign(DEV, canonical_bytes(msgspec.convert(doc, Telemetry)))
    raw = RawBatch("t", 0, np.array([1]), [DEV.encode()], [json.dumps(doc).encode()])
    logic.on_batch([decode_batch(raw, rt.types, rt.keys, rt.decode, now_ms=T0).oks])
    return logic


def test_an_executed_quarantine_shows_until_its_revert_clears_it(runtime: Runtime) -> None:
    logic = _logic(runtime)
    until = T0 + 900_000
    [twin] = _twins(_feed(logic, runtime, [
        _result("a1", "in_progress"),
        _result("a1", "succeeded", executed_at=T0 + 5, expires_at=until, decided_by="alice")]))
    r = twin.response
    assert r is not None and twin.device_id == DEV
    assert (r.state, r.until, r.action_id, r.action, r.by, r.threat, r.since, r.active) == (
        "quarantined", until, "a1", "quarantine", "alice", "brute_force", T0 + 5, 1)
    assert logic.snapshot().responses[DEV]["a1"] == r  # survives a recovery snapshot
    [twin] = _twins(_feed(logic, runtime, [_result("a1", "in_progress", step="revert"),
                                            _result("a1", "reverted", step="revert")]))
    assert twin.response is None and DEV not in logic.engine.store.responses


def test_the_latest_of_two_containments_shows_and_a_confirm_drops_the_end(runtime: Runtime) -> None:
    logic = _logic(runtime)
    _feed(logic, runtime, [_result("a1", "succeeded", executed_at=T0, expires_at=T0 + 9)])
    [twin] = _twins(_feed(logic, runtime, [_result(
        "a2", "succeeded", performs="lock_credentials", executed_at=T0 + 1, expires_at=T0 + 8)]))
    assert twin.response is not None
    assert (twin.response.state, twin.response.active) == ("credentials_locked", 2)
    [twin] = _twins(_feed(logic, runtime, [_result("a2", "succeeded", performs="lock_credentials",
                                                   executed_at=T0 + 1, confirmed=True)]))
    assert twin.response is not None and twin.response.until is None
    [twin] = _twins(_feed(logic, runtime, [_result("a2", "reverted", step="revert")]))
    assert twin.response is not None and twin.response.action_id == "a1"  # the other one stays


def test_what_changes_nothing_emits_nothing_and_bad_records_dead_letter(runtime: Runtime) -> None:
    logic = _logic(runtime)
    out = _feed(logic, runtime, [
        _result("d1", "skipped", dry_run=True),  # a dry run contains nothing
        _result("d2", "pending", hold="approval"),
        _result("d3", "failed", error="refused"),
        _result("d4", "succeeded", performs="investigate", executed_at=T0),  # leaves no state
        _result("d5", "reverted", step="revert"),  # nothing in force to clear
        b'{"not": "a result"}', b""])
    assert _twins(out) == [] and logic.engine.store.responses == {}
    dead = [json.loads(m.value) for m in out if m.role == "deadletter"]
    assert [d["stage"] for d in dead] == ["decode_action_results"] * 2
    assert "schema" in dead[0]["reason"] and "empty message" in dead[1]["reason"]
