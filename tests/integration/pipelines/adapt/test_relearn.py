"""Real broker, live run: `twinguard feedback --verdict benign` at scope device re-learns that
device's baseline while `twinguard run` is running (its twin's baseline_windows drops to 0, which
nothing else does) and suppresses that class on it; a false_positive elsewhere does not re-learn."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from tests.support.cli import twinguard, write_config
from tests.support.cluster import finish, start_cluster
from twinguard.benchmarks.adapt_live import PacedFleet
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.fleet import SimConfig


def docs(cfg: Config, topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` so far (retried while a new broker moves partition leaders)."""
    for _ in range(10):
        try:
            return [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), topic) if v]
        except KafkaException:
            time.sleep(1.0)
    return []


def wait_until(what: str, cond: Callable[[], bool], deadline_s: float = 240.0) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(1.0)


def test_benign_on_a_device_relearns_its_baseline_during_a_run(unique_topics: Config,
                                                               tmp_path: Path) -> None:
    cfg = unique_topics
    config = write_config(cfg, tmp_path / "twinguard.toml")
    feed = PacedFleet(cfg, SimConfig(devices=60, duration_s=100, seed=3), chunk=30)
    log = tmp_path / "run.log"
    run = start_cluster([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config),
                         "run", "--until-idle", "10", "--insecure-dev-key"], log)
    feed.start()
    try:
        def learned_threat() -> dict[str, Any] | None:
            twins = docs(cfg, cfg.topics.twins)
            learned = {t["device_id"] for t in twins if t["baseline_windows"] > 0}
            return next((t for t in docs(cfg, cfg.topics.threats) if t["device_id"] in learned), None)

        wait_until("a threat on a device with a learned baseline", lambda: learned_threat() is not None)
        target = learned_threat()
        assert target is not None
        device = target["device_id"]
        given = twinguard("--config", str(config), "feedback", target["id"], "--verdict", "benign")
        assert given.returncode == 0 and "baseline is re-learned" in given.stdout, given.stderr

        def relearned() -> list[dict[str, Any]]:
            """The device's twins (one partition: in order) at 0 windows after a learned one."""
            twins = [t for t in docs(cfg, cfg.topics.twins) if t["device_id"] == device]
            return [t for i, t in enumerate(twins) if t["baseline_windows"] == 0
                    and any(u["baseline_windows"] > 0 for u in twins[:i])]

        wait_until("the device's twin re-learning", lambda: bool(relearned()))
        since = relearned()[0]["updated_at"]  # the suppression was live before this twin was built
    finally:
        feed.join(300)
        finish(run, log)
    assert feed.error is None, feed.error
    later = [t for t in docs(cfg, cfg.topics.threats) if t["device_id"] == device
             and t["threat"] == target["threat"] and t["detected_at"] > since]
    assert not later  # the class stays suppressed on that device
