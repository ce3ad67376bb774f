"""The whole loop on real brokers: a simulated attack -> `twinguard run` -> threat -> action ->
`twinguard respond` -> an analyst approves -> the device's Mosquitto client is cut off -> the TTL
releases it."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from tests.support.cli import twinguard, write_config
from tests.support.mosquitto import Mosquitto
from tests.support.respond import history, responding, results, wait_for
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation
from twinguard.schemas.messages import Action

PASSWORD = "device-secret"


def test_attack_to_quarantine_and_release(executing: Config, mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = executing.replace(respond={"ttl_s": 5.0})
    produce_simulation(cfg, devices=60, duration_s=40, rate=None, seed=21,
                       labels_path=tmp_path / "labels.jsonl")
    conf = write_config(cfg, tmp_path / "site.toml")
    conf.write_text(conf.read_text() + "[response]\ndry_run = false\n")
    run = twinguard("--config", str(conf), "run", "--until-idle", "6", "--insecure-dev-key")
    assert run.returncode == 0, run.stderr[-3000:]
    actions = [msgspec.json.decode(v, type=Action)
               for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.actions)]
    quarantines = [a for a in actions if a.action == "quarantine" and not a.dry_run
                   and not a.device_id.startswith(("infusion_pump", "pump_plc"))]
    assert quarantines, [(a.action, a.device_id) for a in actions]
    act = quarantines[0]
    mosquitto.add_device(act.device_id, PASSWORD)
    assert mosquitto.publish(act.device_id, PASSWORD, json.dumps({"ok": 1}))
    with responding(cfg):
        waiting = wait_for("the quarantine to wait for approval",
                           lambda: (r := results(cfg).get(act.id)) and r.status == "pending" and r)
        assert waiting.hold == "approval" and waiting.performs == "quarantine"
        ok = twinguard("--config", str(conf), "actions", "approve", act.id, "--analyst", "alice")
        assert ok.returncode == 0 and "succeeded" in ok.stdout, ok
        assert not mosquitto.publish(act.device_id, PASSWORD, json.dumps({"ok": 2}))  # cut off
        wait_for("the TTL to release the device",
                 lambda: mosquitto.publish(act.device_id, PASSWORD, json.dumps({"ok": 3})))
        final = wait_for("the revert to be recorded",
                         lambda: (h := history(cfg, act.id)) and h[-1].status == "reverted" and h[-1])
    assert final.decided_by == "ttl" and "approved by alice" in final.reason
