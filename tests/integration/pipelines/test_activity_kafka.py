"""Real broker, real CLI: telemetry + operator activity -> `twinguard run --until-idle` -> insider and
drift threats on the threats topic, every activity message accounted for."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import read_outputs
from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.sim.labels import read_labels
from twinguard.pipelines.sim.simulate import produce_simulation

BAD_COMMANDS = [b'{"device_id":"thermostat-000001","ts":1,"user":"op.x","action":"set","params":{}}',
                b"not json"]
# Replaying a backlog, a shard may read telemetry well past a command before it reads the command
# (topics are not ordered with each other): verdicts wait for late commands up to 2 minutes of the
# device's event time, or the end of input.
GRACE = "\n[activity]\ncommand_grace_ms = 120000\n"


def test_insider_and_drift_through_kafka(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    labels_path = tmp_path / "labels.jsonl"
    sent = produce_simulation(cfg, devices=120, duration_s=90, rate=None, seed=5,
                              labels_path=labels_path, activity=True)
    p = producer(cfg.kafka.client_settings())
    produce_all(p, cfg.topics.activity, [(b"thermostat-000001", b) for b in BAD_COMMANDS],
                lambda e: None)
    p.flush(30)
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    config_file.write_text(config_file.read_text() + GRACE)

    result = twinguard("--config", str(config_file), "run", "--until-idle", "6",
                       "--insecure-dev-key")
    assert result.returncode == 0, result.stderr[-3000:]

    settings = cfg.kafka.client_settings()
    threats, dead, twins = read_outputs(cfg)
    activity_in = sum(1 for _ in read_topic(settings, cfg.topics.activity))

    # accounting: every activity message is in its twin's `commands` or a dead letter
    act_dead = [d for d in dead if d["topic"] == cfg.topics.activity]
    assert sum(int(str(t["commands"])) for t in twins.values()) + len(act_dead) == activity_in
    assert len(act_dead) >= len(BAD_COMMANDS)
    # ... and every message of both topics (`sent` counts both) is folded in or dead-lettered
    folded = sum(int(str(t["version"])) + int(str(t["commands"])) for t in twins.values())
    assert folded + len(dead) == sent + len(BAD_COMMANDS)

    labels = read_labels(labels_path)
    ev = evaluate(threats, labels, set(twins))
    ours = [a for a in ev.attacks if a.label.threat in ("insider", "drift")]
    assert {a.label.threat for a in ours} == {"insider", "drift"}
    missed = [(a.label, a.classes_seen) for a in ours if not a.right_class]
    assert not missed, missed
    false = [(t["device_id"], t["reasons"]) for t in ev.false_alarms
             if t["threat"] in ("insider", "drift")]
    assert false == []
    assert all(t["user"] for t in threats if t["threat"] == "insider")
