"""Real broker, real CLI: `twinguard model promote` during a live `twinguard run` swaps the model
between batches (later threats carry the new version, every message is still folded into a twin),
a corrupt version is refused with a dead letter and the promoted one keeps scoring, and `model
list` / `rollback` work from the registry."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from confluent_kafka import KafkaException

from tests.support.cli import twinguard, write_config
from tests.support.cluster import finish, start_cluster
from tests.support.kafka import produce, read_outputs
from tests.support.models import model_version_dir
from twinguard.benchmarks.adapt_live import PacedFleet
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.adapt.model_command import record_for
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.fleet import SimConfig

DEVICES = 100


def settled_read(cfg: Config, topic: str) -> list[tuple[bytes | None, bytes]]:
    """read_topic, retried while a new broker still moves partition leaders (NOT_LEADER)."""
    for _ in range(10):
        try:
            return read_topic(cfg.kafka.client_settings(), topic)
        except KafkaException:
            time.sleep(1.0)
    return read_topic(cfg.kafka.client_settings(), topic)


def wait_until(what: str, cond: Callable[[], bool], deadline_s: float = 240.0) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(1.0)


def versions(cfg: Config) -> list[str]:
    """Model versions of the threats so far, in detection order."""
    threats = [json.loads(v) for _, v in settled_read(cfg, cfg.topics.threats)]
    return [t["model_version"] for t in sorted(threats, key=lambda t: t["detected_at"])]


def test_promote_during_a_run_swaps_between_batches_and_refuses_a_corrupt_model(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    config = write_config(cfg, tmp_path / "twinguard.toml")
    new = model_version_dir(tmp_path / "v2", "xgb-hotswap-2")
    feed = PacedFleet(cfg, SimConfig(devices=DEVICES, duration_s=100, seed=11), chunk=50)
    log = tmp_path / "run.log"
    run = start_cluster([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config),
                         "run", "--until-idle", "10", "--workers", "2", "--insecure-dev-key"], log)
    feed.start()
    try:
        wait_until("a threat scored by the shipped model", lambda: len(versions(cfg)) > 0)
        old = versions(cfg)[0]
        out = twinguard("--config", str(config), "model", "promote", str(new), "--note", "v2")
        assert out.returncode == 0 and "xgb-hotswap-2 promoted" in out.stdout, out.stderr
        wait_until("a threat scored by the promoted model",
                   lambda: "xgb-hotswap-2" in versions(cfg))

        # files altered after promotion: the record's sha256 no longer matches
        bad = record_for(model_version_dir(tmp_path / "v3", "xgb-corrupt-3"), "default")
        (tmp_path / "v3" / "model.ubj").write_bytes(b"\x00" * 64)
        produce(cfg, cfg.topics.models, [(b"default", msgspec.json.encode(bad))])
        wait_until("the corrupt model's dead letter", lambda: any(
            json.loads(v)["stage"] == "models"
            for _, v in settled_read(cfg, cfg.topics.deadletter)))
    finally:
        feed.join(300)
        finish(run, log)
    assert feed.error is None, feed.error

    seen = versions(cfg)
    switch = seen.index("xgb-hotswap-2")
    assert set(seen[:switch]) == {old} and set(seen[switch:]) == {"xgb-hotswap-2"}, seen
    threats, dead, twins = read_outputs(cfg)
    assert len(twins) == DEVICES
    assert sum(int(t["version"]) for t in twins.values()) == feed.sent  # every message folded in
    assert [(d["stage"], d["key"]) for d in dead] == [("models", "default")], dead
    assert "xgb-corrupt-3 refused, xgb-hotswap-2 keeps scoring" in dead[0]["reason"]
    assert "sha256" in dead[0]["reason"]

    # the registry's current record is the refused one: list shows it, rollback repairs it
    listed = twinguard("--config", str(config), "model", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line[:2] + line[2:].split()[0] for line in listed.stdout.splitlines()[1:]]
    assert rows == ["  xgb-hotswap-2", "* xgb-corrupt-3"], listed.stdout
    back = twinguard("--config", str(config), "model", "rollback", "xgb-hotswap-2")
    assert back.returncode == 0 and "xgb-hotswap-2 promoted" in back.stdout, back.stderr
    again = twinguard("--config", str(config), "model", "rollback", "xgb-hotswap-2")
    assert again.returncode == 2 and "already the current version" in again.stderr
    never = twinguard("--config", str(config), "model", "rollback", "nope")
    assert never.returncode == 2 and "was never promoted" in never.stderr
