"""Shared plumbing of the adaptive-security measurements (issue 15, items 6a and 6c): private
topics on a broker, `twinguard run` as a child process, a simulated fleet produced paced to event
time (optionally with a benign firmware rollout), and the results files with the load average.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from twinguard.benchmarks.harness import PYTHON, loadavg, machine
from twinguard.operators.detect.scoring import META_FILE, default_model_dir
from twinguard.operators.integrity.signatures import KeyRing
from twinguard.operators.io.kafka import produce_all, producer, scan_topic
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.kafka import admin
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.device_types import load_device_types
from twinguard.schemas.messages import Telemetry, canonical_bytes

Transform = Callable[[list[bytes]], list[bytes]]
LEAD_S = 2.0  # the simulated fleet's first event is this far ahead of its construction
_telemetry = msgspec.json.Decoder(Telemetry)


def bench_config(brokers: str, name: str, partitions: int = 2) -> Config:
    """A config on private, freshly created topics `<topic>.<name>-<random>`."""
    suffix = f"{name}-{uuid.uuid4().hex[:8]}"
    base = load_config()
    cfg = base.replace(kafka={"brokers": brokers, "group_id": f"bench-{suffix}"},
                       topics={**{r: f"{n}.{suffix}" for r, n in base.topics.all().items()},
                               "partitions": partitions})
    admin.create_topics(cfg.kafka.client_settings(), admin.topic_specs(cfg))
    return cfg


def drop_topics(cfg: Config) -> None:
    admin.delete_topics(cfg.kafka.client_settings(), cfg.topics.all().values())


def child_env(cfg: Config) -> dict[str, str]:
    """The child's configuration: the broker and every topic name, as TWINGUARD__ variables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TWINGUARD__KAFKA__BROKERS": cfg.kafka.brokers,
           "TWINGUARD__KAFKA__GROUP_ID": cfg.kafka.group_id,
           "TWINGUARD__TOPICS__PARTITIONS": str(cfg.topics.partitions)}
    env.update({f"TWINGUARD__TOPICS__{r.upper()}": n for r, n in cfg.topics.all().items()})
    return env


def twinguard(cfg: Config, *args: str) -> subprocess.CompletedProcess[str]:
    """A `twinguard` command against the benchmark's topics, to its end."""
    return subprocess.run([PYTHON, "-m", "twinguard.pipelines.cli", *args], env=child_env(cfg),
                          capture_output=True, text=True, timeout=600, check=False)


def start_run(cfg: Config, log: Path, until_idle: float, workers: int = 1) -> subprocess.Popen[bytes]:
    """`twinguard run` in a child process (its output in `log`) until its input idles."""
    with log.open("ab") as f:
        return subprocess.Popen(
            [PYTHON, "-m", "twinguard.pipelines.cli", "run", "--until-idle", str(until_idle),
             "--workers", str(workers), "--insecure-dev-key"],
            env=child_env(cfg), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)


def finish_run(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 900) -> float:
    """Wait for the run to end cleanly; the CPU seconds its process used."""
    rc = proc.wait(timeout_s)
    if rc != 0:
        raise RuntimeError(f"twinguard run ended with {rc}; see {log}")
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


class PacedFleet(threading.Thread):
    """Produces a simulated fleet paced to event time, optionally rewriting each batch of encoded
    messages (`transform`) before it is sent. `sent` counts messages. Event time starts LEAD_S
    after construction (the exact millisecond, not rounded) and a chunk is sent once its last
    event is due, so no message leaves before its event time: a latency measured against event
    time is never flattered."""

    def __init__(self, cfg: Config, sim: SimConfig, transform: Transform | None = None,
                 chunk: int = 500) -> None:
        super().__init__(name="paced-fleet", daemon=True)
        keys = KeyRing.from_config("", "TWINGUARD_HMAC_MASTER", allow_dev_key=True)
        self.cfg, self.transform, self.chunk = cfg, transform, chunk  # chunk: messages per send
        start = int(time.time() * 1000) + int(LEAD_S * 1000)
        self.fleet = FleetSimulator(dataclasses.replace(sim, start_ms=start), load_device_types(),
                                    keys)
        self.keys = keys
        self.sent = 0
        self.error: str | None = None

    def run(self) -> None:
        p = producer(self.cfg.kafka.client_settings())
        errors: list[str] = []
        try:
            for b in self.fleet.batches(self.chunk):
                wait = int(b.ts_ms[-1]) / 1000 - time.time()
                if wait > 0:
                    time.sleep(wait)
                values = self.transform(b.values) if self.transform else b.values
                produce_all(p, self.cfg.topics.telemetry, list(zip(b.keys, values, strict=True)),
                            errors.append)
                self.sent += len(values)
                if errors:
                    raise RuntimeError(f"Kafka refused telemetry: {errors[:3]}")
            if p.flush(60):
                raise RuntimeError("telemetry not confirmed by the broker within 60 s")
        except Exception as e:  # noqa: BLE001 - reported to the measuring thread
            self.error = f"{type(e).__name__}: {e}"


def rollout(keys: KeyRing, device_type: str, at_ms: int, fw: str, bytes_factor: float,
            conns_factor: float, spread_ms: int = 0) -> Transform:
    """A benign firmware rollout: from `at_ms` on, staggered over `spread_ms` (each device at a
    fixed point given by a hash of its id, as a fleet manager updates in waves), every device of
    `device_type` runs `fw` and sends `bytes_factor` times the bytes over `conns_factor` times the
    connections (say, richer telemetry); messages re-signed with the device's key, as the new
    firmware would sign them."""
    def switch_ms(device: str) -> int:
        return at_ms + spread_ms * (zlib.crc32(device.encode()) % 1000) // 1000

    def change(values: list[bytes]) -> list[bytes]:
        out = []
        for v in values:
            ev = _telemetry.decode(v)
            ts = ev.ts if isinstance(ev.ts, int) else int(ev.ts.timestamp() * 1000)
            if ev.type != device_type or ev.net is None or ts < switch_ms(ev.device_id):
                out.append(v)
                continue
            net = msgspec.structs.replace(ev.net, bytes_out=int(ev.net.bytes_out * bytes_factor),
                                          connections=int(max(ev.net.connections, 1) * conns_factor))
            ev = msgspec.structs.replace(ev, net=net, fw=fw, sig=None)
            ev = msgspec.structs.replace(ev, sig=keys.sign(ev.device_id, canonical_bytes(ev)))
            out.append(msgspec.json.encode(ev))
        return out
    return change


def records(cfg: Config, topic: str) -> list[tuple[dict[str, Any], int]]:
    """(decoded JSON, Kafka timestamp ms) of every record on `topic` so far."""
    out = []
    for m in scan_topic(cfg.kafka.client_settings(), topic):
        if m.value():
            out.append((json.loads(m.value()), int(m.timestamp()[1])))
    return out


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def write_results(out: Path, name: str, results: dict[str, Any], summary: list[str]) -> Path:
    """out/<name>.json (everything, with the machine and its load average) and out/<name>.md."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "machine": machine(), "loadavg_at_end": loadavg(), **results}
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    load = f"load average at start {results.get('loadavg_at_start')}, at end {doc['loadavg_at_end']}"
    (out / f"{name}.md").write_text(f"# {name}\n\n" + "\n".join(f"- {s}" for s in summary)
                                    + f"\n- {load}\n")
    print("\n".join(summary) + f"\n{load}")
    return out / f"{name}.json"


def model_version_dir(dst: Path, version: str, **meta_changes: object) -> Path:
    """The shipped model directory copied to `dst` with metadata `version` (and any other
    metadata keys) changed: the same booster, verifiable, under another version."""
    shutil.copytree(default_model_dir(), dst)
    meta = json.loads((dst / META_FILE).read_text())
    meta.update(version=version, **meta_changes)
    (dst / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return dst
