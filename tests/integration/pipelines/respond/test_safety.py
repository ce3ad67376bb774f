"""Safety on the real broker: the blast-radius guard holds a fleet-wide burst, analysts approve and
reject with `twinguard actions`, a life-critical device only gets a fail-safe, bad input is dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import produce
from tests.support.respond import (
    action,
    commands,
    publish_actions,
    publish_twins,
    responding,
    results,
    wait_for,
)
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config

FLEET = {f"smart_meter-{i:06d}": "smart_meter" for i in range(10)}
PUMP = "pump_plc-000007"


def test_guard_approvals_failsafe_and_dead_letters(executing: Config, tmp_path: Path) -> None:
    cfg = executing.replace(respond={"guard_max_devices": 3, "guard_max_type_share": 1.0, "ttl_s": 600.0})
    publish_twins(cfg, {**FLEET, PUMP: "pump_plc"})
    burst = [action(d, "rate_limit") for d in FLEET]
    pump = action(PUMP, "quarantine")
    conf = write_config(cfg, tmp_path / "site.toml")
    with responding(cfg):
        publish_actions(cfg, [*burst, pump])
        produce(cfg, cfg.topics.actions, [(b"x", b"{not json"),
                                          (b"y", json.dumps({**_doc(burst[0]), "id": "u1",
                                                             "action": "reboot"}).encode())])
        state = wait_for("every action decided", lambda: (r := results(cfg)) and len(r) == 11
                         and all(x.status != "in_progress" for x in r.values()) and r)
        done = [a.id for a in burst if state[a.id].status == "succeeded"]
        held = [a.id for a in burst if state[a.id].status == "pending"]
        assert len(done) == 3 and len(held) == 7  # the guard held the burst at 3 devices
        assert all(state[i].hold == "guard" and "3 devices already acted on" in state[i].reason
                   for i in held)
        life = state[pump.id]  # life-critical: approval, and a fail-safe instead of the cut-off
        assert (life.status, life.hold, life.performs) == ("pending", "approval", "failsafe")
        assert "pump_plc is life-critical: never cut off" in life.reason

        approve = twinguard("--config", str(conf), "actions", "approve", held[0], "--analyst",
                            "alice", "--note", "checked")
        reject = twinguard("--config", str(conf), "actions", "reject", held[1], "--analyst", "bob")
        fails = twinguard("--config", str(conf), "actions", "approve", pump.id, "--analyst", "carol")
        again = twinguard("--config", str(conf), "actions", "reject", held[1])
        listed = twinguard("--config", str(conf), "actions", "list", "--status", "pending")
    assert approve.returncode == 0 and "succeeded" in approve.stdout, approve
    assert reject.returncode == 0 and "cancelled" in reject.stdout, reject
    assert fails.returncode == 0 and "succeeded" in fails.stdout, fails
    assert again.returncode == 2 and "it is cancelled" in again.stderr, again  # one line, no trace
    assert "5 actions" in listed.stdout, listed.stdout  # 7 held - 1 approved - 1 rejected
    final = results(cfg)
    assert final[held[0]].decided_by == "alice" and "approved by alice (checked)" in final[held[0]].reason
    assert final[held[1]].status == "cancelled"
    sent = {c.action_id: c for c in commands(cfg)}
    assert set(sent) == {*done, held[0], pump.id}  # nothing held or rejected reached a gateway
    assert sent[pump.id].command == "failsafe" and sent[pump.id].safe_state == "pump off, valve open"
    assert sent[pump.id].setpoints == {"pump_on": 0.0, "valve_open_pct": 100.0}
    dead = [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.deadletter)]
    reasons = sorted(d["reason"].split(":")[0] for d in dead)
    assert reasons == ["malformed action", "unknown action 'reboot' (known"], reasons
    assert all(d["stage"] == "respond" for d in dead)


def _doc(a: object) -> dict[str, object]:
    import msgspec
    out: dict[str, object] = msgspec.to_builtins(a)
    return out
