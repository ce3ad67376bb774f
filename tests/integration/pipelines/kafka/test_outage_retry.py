"""A broker outage after start-up: `twinguard run` keeps retrying (a few readable lines, none of
librdkafka's raw ones) and, once the broker is back, reads what arrives after it.

The outage needs a broker this test may stop: a private one (own state and data dirs), not the
shared session broker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import write_config
from tests.support.metrics import parse, scrape, total, wait_for
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import admin
from twinguard.pipelines.kafka import local as kafka_local
from twinguard.pipelines.sim.simulate import produce_simulation

RAW_LIBRDKAFKA = ("%3|", "%4|", "rdkafka#")


@pytest.fixture
def private_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Path]]:
    monkeypatch.setenv("TWINGUARD_STATE_DIR", str(tmp_path / "kafka-state"))
    port, data = kafka_local.free_port(), tmp_path / "kafka-data"
    kafka_local.up(port, data)
    try:
        yield port, data
    finally:
        kafka_local.down()


def test_run_retries_through_an_outage(private_broker: tuple[int, Path], config: Config,
                                       tmp_path: Path) -> None:
    port, data = private_broker
    cfg = config.replace(kafka={"brokers": f"127.0.0.1:{port}"}, topics={"partitions": 1})
    settings = cfg.kafka.client_settings()
    admin.create_topics(settings, admin.topic_specs(cfg))
    produce_simulation(cfg, devices=10, duration_s=10, rate=None, seed=3,
                       labels_path=tmp_path / "labels.jsonl")
    metrics_port = kafka_local.free_port()
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    config_file.write_text(config_file.read_text() + f"[metrics]\nport = {metrics_port}\n")
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        run = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config",
                                str(config_file), "run", "--until-idle", "5",
                                "--insecure-dev-key"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def consumed(n: int) -> Callable[[], str]:
        def check() -> str:
            assert run.poll() is None, log_path.read_text()[-3000:]
            try:
                seen = total(parse(scrape(url)), "twinguard_messages_in_total",
                             topic=cfg.topics.telemetry)
            except OSError as e:
                return f"no endpoint yet ({e})"
            return "" if seen == n else f"{seen} of {n} consumed"
        return check

    try:
        first = sum(admin.end_offsets(settings, cfg.topics.telemetry).values())
        wait_for(consumed(first), timeout_s=120)
        kafka_local.down()
        wait_for(lambda: "" if "retrying" in log_path.read_text() and run.poll() is None
                 else "no retry reported yet", timeout_s=60)
        kafka_local.up(port, data)
        produce_simulation(cfg, devices=10, duration_s=10, rate=None, seed=4,
                           labels_path=tmp_path / "labels2.jsonl")
        after = sum(admin.end_offsets(settings, cfg.topics.telemetry).values())
        assert after > first
        wait_for(consumed(after), timeout_s=120)
        assert run.wait(timeout=120) == 0, log_path.read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    text = log_path.read_text()
    assert not any(raw in text for raw in RAW_LIBRDKAFKA), text[-3000:]
    retries = [ln for ln in text.splitlines() if "retrying" in ln]
    print(f"{len(retries)} retry lines during the outage")
    assert 1 <= len(retries) <= 10, "\n".join(retries)
