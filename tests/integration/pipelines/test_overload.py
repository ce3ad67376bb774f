"""Offered load above capacity: memory stays bounded, consumer lag grows, nothing dies or is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.cli import write_config
from twinguard.operators.io.kafka import consumer_lag, read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_overload_grows_lag_not_memory(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    run = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config_file),
                            "run", "--until-idle", "8", "--insecure-dev-key"],
                           stderr=subprocess.PIPE, text=True)
    sent: list[int] = []
    producer = threading.Thread(target=lambda: sent.append(produce_simulation(
        cfg, devices=2500, duration_s=60, rate=None, seed=3, labels_path=tmp_path / "l.jsonl")))
    producer.start()
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, lag)
    t0 = time.monotonic()
    while run.poll() is None and time.monotonic() - t0 < 400:
        samples.append((time.monotonic() - t0, rss_mb(run.pid),
                        consumer_lag(cfg.kafka.client_settings(), cfg.topics.telemetry)))
        time.sleep(1.0)
    producer.join()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err[-3000:]

    peak_lag = max(lag for *_, lag in samples)
    print("overload samples (s, RSS MB, lag):", samples)
    assert peak_lag > 20_000, f"the load never exceeded capacity (peak lag {peak_lag})"
    # memory: what the process holds while the backlog is largest stays near what it held early on
    busy = [mb for _, mb, lag in samples if lag > peak_lag / 2]
    early = [mb for sec, mb, _ in samples if sec > 5][:5]
    assert max(busy) < max(early) * 1.5 + 200, samples
    twins: dict[bytes, dict[str, int]] = {}
    for k, v in read_topic(cfg.kafka.client_settings(), cfg.topics.twins):
        assert k is not None
        twins[k] = json.loads(v)
    assert sum(t["version"] for t in twins.values()) == sent[0]
