"""Real broker, real CLI: simulate with attacks -> `twinguard run --until-idle` -> read the output topics."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import read_outputs
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.sim.labels import read_labels
from twinguard.pipelines.sim.simulate import produce_simulation

GARBAGE = [b"{oops", b"", b'{"device_id":"x","type":"toaster","ts":1,"seq":1,"signals":{}}']


def test_simulated_attacks_are_detected_through_kafka(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    labels_path = tmp_path / "labels.jsonl"
    sent = produce_simulation(cfg, devices=200, duration_s=60, rate=None, seed=21,
                              labels_path=labels_path)
    p = producer(cfg.kafka.client_settings())
    produce_all(p, cfg.topics.telemetry, [(b"bad", g) for g in GARBAGE], lambda e: None)
    p.flush(30)
    config_file = write_config(cfg, tmp_path / "twinguard.toml")

    result = twinguard("--config", str(config_file), "run", "--until-idle", "6",
                       "--insecure-dev-key")
    assert result.returncode == 0, result.stderr[-3000:]

    threats, dead, twins = read_outputs(cfg)
    labels = read_labels(labels_path)
    devices = {d for d in twins if not d.startswith("x")}

    # accounting: every input message is processed (in its twin's version) or dead-lettered
    processed = sum(int(str(t["version"])) for t in twins.values())
    assert processed + len(dead) == sent + len(GARBAGE)
    assert len(dead) >= len(GARBAGE) and all(d["reason"] for d in dead)
    assert len(devices) == 200

    ev = evaluate(threats, labels, devices)
    missed = [(a.label, a.classes_seen) for a in ev.attacks if not a.right_class]
    assert not missed, missed
    assert ev.normal_devices_alarmed <= 4  # false-alarm budget: 2% of normal devices

    # `twinguard evaluate` reads the same topics and agrees
    out = twinguard("--config", str(config_file), "evaluate", "--labels", str(labels_path),
                    "--out", str(tmp_path / "eval.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["attacks"] == len(labels)
