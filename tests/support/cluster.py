"""A local `twinguard cluster` on the real broker: topics with many partitions, staged input, audits."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.kafka import produce
from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.chaos.audit import audit_topics
from twinguard.pipelines.cluster.local import ClusterState, state_path
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.device_types import load_device_types

OUTPUT_ROLES = ("twins", "threats", "actions", "deadletter")
RUN_TIMEOUT_S = 300


def cluster_topics(cfg: Config, brokers: str, partitions: int) -> Config:
    """Fresh input and output topics with `partitions` partitions each."""
    suffix = uuid.uuid4().hex[:10]
    names: dict[str, object] = {r: f"{n}.{suffix}" for r, n in cfg.topics.all().items()}
    out = cfg.replace(kafka={"brokers": brokers}, topics={**names, "partitions": partitions})
    kafka_admin.create_topics(out.kafka.client_settings(), kafka_admin.topic_specs(out))
    return out


def fresh_outputs(cfg: Config, tag: str) -> Config:
    """The same input topics with new output topics (one run's outputs kept apart from another's)."""
    names: dict[str, object] = {r: f"{getattr(cfg.topics, r)}.{tag}" for r in OUTPUT_ROLES}
    out = cfg.replace(topics=names)
    specs = [s for s in kafka_admin.topic_specs(out) if s.name in names.values()]
    kafka_admin.create_topics(out.kafka.client_settings(), specs)
    return out


def fleet_messages(devices: int, duration_s: float, seed: int) -> list[tuple[bytes, bytes]]:
    """Signed telemetry of a simulated fleet with attacks, as (key, value), in production order."""
    keys = KeyRing.from_config("", "TWINGUARD_HMAC_MASTER_UNSET", allow_dev_key=True)
    start = int(time.time() * 1000) - int(duration_s * 1000)
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=duration_s, seed=seed,
                                     start_ms=start), load_device_types(), keys)
    return [(k, v) for b in fleet.batches() for k, v in zip(b.keys, b.values, strict=True)]


def send(cfg: Config, messages: list[tuple[bytes, bytes]]) -> None:
    """Messages to the telemetry topic, every one confirmed."""
    produce(cfg, cfg.topics.telemetry, messages)


def write_cluster_config(cfg: Config, path: Path) -> Path:
    """A config file with the broker, topics and short snapshot intervals (1 s epochs)."""
    topics = "\n".join(f'{role} = "{name}"' for role, name in cfg.topics.all().items())
    path.write_text(f'[kafka]\nbrokers = "{cfg.kafka.brokers}"\n[topics]\n{topics}\n'
                    f"partitions = {cfg.topics.partitions}\n"
                    "[recovery]\nsnapshot_interval_s = 1.0\npartitions = 6\n")
    return path


def cluster_command(config: Path, processes: int, workers: int, store: Path, state: Path,
                    until_idle: float = 3) -> list[str]:
    """`twinguard cluster up` in the foreground, ending once the input is drained and idle."""
    return [sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config), "cluster",
            "up", "--processes", str(processes), "--workers", str(workers), "--recovery-dir",
            str(store), "--state-dir", str(state), "--until-idle", str(until_idle),
            "--insecure-dev-key"]


def start_cluster(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    """The supervisor as a child process, its output in `log`."""
    with log.open("ab") as f:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def finish(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the supervisor to end cleanly; on failure show its log and the processes' logs."""
    try:
        rc = proc.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        rc = None
    assert rc == 0, f"cluster ended with {rc}:\n{_logs(log)}"


def run_cluster(cmd: list[str], log: Path) -> None:
    """One whole cluster run, start to clean end."""
    finish(start_cluster(cmd, log), log)


def wait_for(what: str, done: Any, timeout_s: float = 120) -> None:
    """Poll `done()` until true, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def committed_epoch(store: Path) -> int:
    """The highest epoch a recovery store has committed (0 before any): an epoch closes only when
    every process of the mesh has progressed, so a committed epoch >= 2 proves the mesh runs (its
    files alone do not: each process opens its store partitions before connecting)."""
    best = 0
    for part in store.glob("part-*.sqlite3"):
        try:
            with sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=1) as db:
                row = db.execute("SELECT MAX(commit_epoch) FROM commits").fetchone()
        except sqlite3.Error:  # not created yet, or busy: ask again on the next poll
            continue
        best = max(best, int(row[0] or 0))
    return best


def cluster_state(state: Path) -> ClusterState | None:
    """The running cluster's state file (None before it started)."""
    return ClusterState.read(state_path(state))


def output_count(cfg: Config) -> int:
    """Messages written to the twins topic so far."""
    return sum(kafka_admin.end_offsets(cfg.kafka.client_settings(), cfg.topics.twins).values())


def audit(cfg: Config) -> dict[str, Any]:
    """Every input accounted for, duplicates and their ids (pipelines/chaos/audit.py)."""
    report = audit_topics(cfg, cfg.detection.alert_cooldown_ms)
    report["threat_ids"] = {t["id"] for t in report.pop("_threats")}
    return report


def _logs(log: Path) -> str:
    parts = [log.read_text(errors="replace")[-3000:]]
    state = log.parent / "state"
    for p in sorted(state.glob("twinguard-*.log")) if state.is_dir() else []:
        parts.append(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)


def summary(report: dict[str, Any]) -> str:
    """The accounting numbers of an audit, for a failure message or the log."""
    return json.dumps({k: v for k, v in report.items() if k != "threat_ids"}, default=str)
