"""The twin shows the response: a simulated attack -> `twinguard run` -> a quarantine action ->
`twinguard respond` cuts the device's Mosquitto client off -> the twins topic shows it quarantined
until the TTL -> the TTL releases it -> the twin's response state is cleared. All on real brokers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from tests.support.cli import write_config
from tests.support.mosquitto import Mosquitto
from tests.support.respond import history, responding, results, wait_for
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation
from twinguard.schemas.messages import TwinState

PASSWORD = "device-secret"


def test_the_twin_shows_a_quarantine_until_its_ttl_clears_it(executing: Config, mosquitto: Mosquitto,
                                                              tmp_path: Path) -> None:
    cfg = executing.replace(respond={"ttl_s": 6.0, "tiers": {"quarantine": "auto"},
                                     "unknown_type_tier": "auto", "guard_max_devices": 100000,
                                     "guard_max_type_share": 1.0})
    labels = tmp_path / "labels.jsonl"
    produce_simulation(cfg, devices=60, duration_s=40, rate=None, seed=21, labels_path=labels)
    attacked = sorted({json.loads(line)["device_id"] for line in labels.read_text().splitlines()})
    for device in attacked:  # the attacked devices' MQTT clients (the others are never acted on)
        mosquitto.add_device(device, PASSWORD)
    conf = write_config(cfg, tmp_path / "site.toml")
    conf.write_text(conf.read_text() + "[response]\ndry_run = false\n")
    with responding(cfg), (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(conf),
                                "run", "--until-idle", "20", "--insecure-dev-key"], stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            done = wait_for("a quarantine to be executed", lambda: [
                r for r in results(cfg).values() if r.performs == "quarantine"
                and r.status in ("succeeded", "reverted") and r.request.device_id in attacked],
                timeout_s=300)
            device = done[0].request.device_id
            assert not mosquitto.publish(device, PASSWORD, '{"kwh": 1}')  # cut off
            steps = wait_for("the TTL to release it", lambda: (h := history(cfg, done[0].action_id))
                             and h[-1].status == "reverted" and h, timeout_s=120)
            assert mosquitto.publish(device, PASSWORD, '{"kwh": 2}')
        finally:
            code = run.wait(300)
    assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
    executed = next(s for s in steps if s.status == "succeeded")
    twins = [t for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.twins)
             if (t := msgspec.json.decode(v, type=TwinState)).device_id == device]
    shown = [t for t in twins if t.response is not None]
    assert shown, f"no twin of {device} showed a response: {len(twins)} twins"
    r = shown[0].response
    assert r is not None
    assert (r.state, r.action_id, r.action, r.until, r.by, r.since) == (
        "quarantined", executed.action_id, "quarantine", executed.expires_at, "policy",
        executed.executed_at)
    assert r.threat is not None and r.threat == executed.request.threat
    after = twins[twins.index(shown[-1]) + 1:]
    assert after and after[0].response is None  # the revert cleared it
    assert after[0].updated_at >= steps[-1].at - 1000
