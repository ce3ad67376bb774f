"""`twinguard simulate`: produce a simulated fleet's telemetry to Kafka and write its attack labels."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from operators.integrity import KeyRing
from operators.kafka_io import produce_all, producer
from operators.labels import write_labels
from operators.simulator import FleetSimulator, SimConfig
from pipelines.config import Config
from schemas.device_types import load_device_types


def produce_simulation(cfg: Config, devices: int, duration_s: float, rate: float | None,
                       seed: int, labels_path: Path, realtime: bool = False) -> int:
    """Produce every simulated message (keyed by device id); returns how many were produced."""
    keys = KeyRing.from_config(cfg.integrity.key_file, cfg.integrity.master_key_env)
    # unpaced runs are history that ends now; paced (realtime) runs start now
    start_ms = int(time.time() * 1000) - (0 if realtime else int(duration_s * 1000))
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=duration_s, rate=rate, seed=seed,
                                     start_ms=start_ms), load_device_types(), keys)
    write_labels(fleet.labels, labels_path)
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    sent, t0, first_ts = 0, time.monotonic(), None
    with tqdm(total=fleet.expected_events(), desc="simulate", unit="ev", unit_scale=True) as bar:
        for b in fleet.batches():
            if realtime and len(b.ts_ms):
                first_ts = first_ts if first_ts is not None else int(b.ts_ms[0])
                wait = (int(b.ts_ms[0]) - first_ts) / 1000 - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
            produce_all(p, cfg.topics.telemetry, list(zip(b.keys, b.values, strict=True)),
                        errors.append)
            sent += len(b.values)
            bar.update(len(b.values))
            if errors:
                raise RuntimeError(f"Kafka refused telemetry: {errors[:3]}")
    left = p.flush(60)
    if left or errors:
        raise RuntimeError(f"{left} messages not delivered to {cfg.kafka.brokers}: {errors[:3]}")
    print(f"produced {sent} messages from {devices} devices to {cfg.topics.telemetry}; "
          f"{len(fleet.labels)} attacks labelled in {labels_path}")
    return sent
