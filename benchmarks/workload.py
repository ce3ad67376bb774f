"""Benchmark input: simulated fleet telemetry (signed JSON, labelled attacks) held in memory.

Generated once per size with the project's FleetSimulator, so every suite and every peer sees the
same bytes. Unpaced workloads are history that ends now (as `twinguard simulate` writes them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.pipelines.sim.labels import AttackLabel


@dataclass
class Workload:
    devices: int
    duration_s: float
    seed: int
    start_ms: int
    keys: list[bytes]
    values: list[bytes]
    ts_ms: npt.NDArray[np.int64]  # send time per message, non-decreasing
    labels: list[AttackLabel]
    device_ids: set[str]
    generate_s: float

    def __len__(self) -> int:
        return len(self.values)

    @property
    def events_per_device_s(self) -> float:
        """Mean report rate of one device (events per simulated second)."""
        return len(self) / self.devices / self.duration_s

    def chunks(self, size: int) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """(keys, values) slices of `size` messages, like one source poll each."""
        for i in range(0, len(self.values), size):
            yield self.keys[i:i + size], self.values[i:i + size]

    def describe(self) -> dict[str, object]:
        return {"devices": self.devices, "duration_s": self.duration_s, "seed": self.seed,
                "messages": len(self), "attacks": len(self.labels),
                "mean_message_bytes": round(sum(map(len, self.values)) / max(len(self), 1), 1),
                "events_per_device_s": round(self.events_per_device_s, 3),
                "generate_s": round(self.generate_s, 2)}


def generate(rt: Runtime, devices: int, duration_s: float, seed: int = 7,
             start_ms: int | None = None) -> Workload:
    """The whole run in memory; start_ms None = history ending now."""
    if start_ms is None:
        start_ms = int(time.time() * 1000) - int(duration_s * 1000)
    t0 = time.perf_counter()
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=duration_s, seed=seed,
                                     start_ms=start_ms), rt.types, rt.keys)
    keys: list[bytes] = []
    values: list[bytes] = []
    stamps: list[npt.NDArray[np.int64]] = []
    for b in fleet.batches(20_000):
        keys += b.keys
        values += b.values
        stamps.append(np.asarray(b.ts_ms, dtype=np.int64))
    ts = np.concatenate(stamps) if stamps else np.zeros(0, dtype=np.int64)
    return Workload(devices, duration_s, seed, start_ms, keys, values, ts, list(fleet.labels),
                    {d for d, _ in fleet.devices}, time.perf_counter() - t0)
