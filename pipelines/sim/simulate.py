"""`twinguard simulate`: produce a simulated fleet's telemetry and its operators' activity to Kafka and
write the attack labels (telemetry attacks, insider and drift)."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.activity import ActivitySimulator
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.pipelines.sim.labels import write_labels
from twinguard.schemas.device_types import load_device_types


def produce_simulation(cfg: Config, devices: int, duration_s: float, rate: float | None,
                       seed: int, labels_path: Path, realtime: bool = False,
                       activity: bool = False) -> int:
    """Produce every simulated message (keyed by device id); returns how many were produced
    (telemetry, plus the operators' activity when `activity`, as `twinguard simulate` does)."""
    # a simulator signs its own fleet: the development key is fine here, `run` decides whether
    # to accept it
    keys = KeyRing.from_config(cfg.integrity.key_file, cfg.integrity.master_key_env,
                               allow_dev_key=True)
    # unpaced runs are history that ends now; paced (realtime) runs start now
    start_ms = int(time.time() * 1000) - (0 if realtime else int(duration_s * 1000))
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=duration_s, rate=rate, seed=seed,
                                     start_ms=start_ms), load_device_types(), keys)
    operators = ActivitySimulator(fleet) if activity else None
    n_activity = len(operators.rows) if operators is not None else 0
    write_labels(fleet.labels, labels_path)
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    sent, t0, first_ts = 0, time.monotonic(), None
    chunks = (operators.interleave(fleet.batches()) if operators is not None else
              (("telemetry", b.keys, b.values, b.ts_ms) for b in fleet.batches()))
    with tqdm(total=fleet.expected_events() + n_activity, desc="simulate", unit="ev",
              unit_scale=True) as bar:
        for role, msg_keys, values, stamps in chunks:
            if realtime and role == "telemetry" and len(stamps):
                first_ts = first_ts if first_ts is not None else int(stamps[0])
                wait = (int(stamps[0]) - first_ts) / 1000 - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
            topic = cfg.topics.activity if role == "activity" else cfg.topics.telemetry
            produce_all(p, topic, list(zip(msg_keys, values, strict=True)), errors.append)
            sent += len(values)
            bar.update(len(values))
            if errors:
                raise RuntimeError(f"Kafka refused {role}: {errors[:3]}")
    left = p.flush(60)
    if left or errors:
        raise RuntimeError(f"{left} messages not delivered to {cfg.kafka.brokers}: {errors[:3]}")
    print(f"produced {sent - n_activity} messages from {devices} devices to {cfg.topics.telemetry} "
          f"and {n_activity} operator messages to {cfg.topics.activity}; "
          f"{len(fleet.labels)} attacks labelled in {labels_path}")
    return sent
