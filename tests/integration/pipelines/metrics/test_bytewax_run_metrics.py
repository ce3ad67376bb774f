"""Flows started with `python -m bytewax.run "twinguard.pipelines.flow:build_flow()" -w 2` serve
the same metrics: two worker threads add into one process's series, configured by environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.metrics import parse, scrape, total, wait_for
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.admin import end_offsets
from twinguard.pipelines.kafka.local import free_port
from twinguard.pipelines.sim.simulate import produce_simulation

DEVICES = 20


def test_bytewax_run_serves_metrics(unique_topics: Config, tmp_path: Path) -> None:
    cfg, settings = unique_topics, unique_topics.kafka.client_settings()
    produce_simulation(cfg, devices=DEVICES, duration_s=20, rate=None, seed=8,
                       labels_path=tmp_path / "labels.jsonl", activity=True)
    produced = {t: sum(end_offsets(settings, t).values())
                for t in (cfg.topics.telemetry, cfg.topics.activity)}
    port = free_port()
    env = {**os.environ, "TWINGUARD__KAFKA__BROKERS": cfg.kafka.brokers,
           "TWINGUARD__INTEGRITY__INSECURE_DEV_KEY": "true", "TWINGUARD__METRICS__PORT": str(port),
           **{f"TWINGUARD__TOPICS__{role.upper()}": name for role, name in cfg.topics.all().items()}}
    log_path = tmp_path / "flow.log"
    with log_path.open("w") as log:
        flow = subprocess.Popen([sys.executable, "-m", "bytewax.run",
                                 "twinguard.pipelines.flow:build_flow()", "-w", "2"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/metrics"

    def caught_up() -> str:
        assert flow.poll() is None, log_path.read_text()[-3000:]
        try:
            got = parse(scrape(url))
        except OSError as e:
            return f"no endpoint yet ({e})"
        seen = {t: total(got, "twinguard_messages_in_total", topic=t) for t in produced}
        twins = total(got, "twinguard_twins_tracked")
        return "" if seen == produced and twins == DEVICES else f"in {seen}, {twins} twins"

    try:
        wait_for(caught_up, timeout_s=120)
    finally:
        flow.kill()
        flow.wait()
