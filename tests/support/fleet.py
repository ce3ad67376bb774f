"""Simulated fleets run to the end and recorded: batches as sent, every message decoded."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.sim.fleet import FleetSimulator, SimBatch, SimConfig
from twinguard.schemas.device_types import DeviceType, DeviceTypeTable
from twinguard.schemas.messages import Telemetry

START_MS = 1_700_000_000_000
# The fleet most tests share (conftest.py `small_fleet`): every device type, every attack class,
# a fixed start so that threat ids and times repeat from run to run.
SMALL_FLEET = SimConfig(devices=40, duration_s=60.0, seed=11, start_ms=START_MS)
BATCH_EVENTS = 700  # small enough that a run spans many batches (and both flow partitions)


@dataclass
class SentMessage:
    sent: int  # batch ts_ms (send time)
    key: bytes
    value: bytes
    ev: Telemetry


@dataclass
class Recording:
    sim: FleetSimulator
    batches: list[SimBatch]
    msgs: list[SentMessage]

    def of(self, device_id: str) -> list[SentMessage]:
        """One device's messages in stream order."""
        return [m for m in self.msgs if m.ev.device_id == device_id]

    def dtype(self, device_id: str) -> DeviceType:
        """Device type of a device."""
        types = self.sim.types
        return types.types[types.index[dict(self.sim.devices)[device_id]]]


def record(cfg: SimConfig, types: DeviceTypeTable, keys: KeyRing,
           max_events: int = BATCH_EVENTS) -> Recording:
    """Run a simulation to the end and decode every message."""
    sim = FleetSimulator(cfg, types, keys)
    batches = list(sim.batches(max_events))
    dec = msgspec.json.Decoder(Telemetry)
    msgs = [SentMessage(int(t), k, v, dec.decode(v)) for b in batches
            for k, v, t in zip(b.keys, b.values, b.ts_ms.tolist(), strict=True)]
    return Recording(sim, batches, msgs)
