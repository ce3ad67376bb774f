"""Smart-meter reports as kernel input: one voltage value per report, the other signals consistent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.support.batches import telemetry_batch
from tests.support.devices import METER
from twinguard.operators.batches import TelemetryBatch
from twinguard.schemas.device_types import MAX_SIGNALS


@dataclass
class MeterEvent:
    device: str
    ts: int
    seq: int
    value: float  # voltage_v; the other meter signals stay consistent
    bytes_out: float
    auth: float
    port: int
    sig_state: int
    partition: int = 0


def meter_batch(events: list[MeterEvent]) -> TelemetryBatch:
    """The events as one decoded batch: voltage, 10 A at power factor 0.9, a slowly growing meter."""
    sig = np.full((len(events), MAX_SIGNALS), np.nan)
    for i, e in enumerate(events):
        sig[i, :4] = (e.value, 10.0, e.value * 10.0 * 0.9, 100.0 + e.ts / 1e9)
    return telemetry_batch(
        [e.device for e in events], METER, [e.ts for e in events], [e.seq for e in events], sig,
        bytes_out=[e.bytes_out for e in events], auth_fail=[e.auth for e in events],
        dst_port=[e.port for e in events], sig_state=[e.sig_state for e in events],
        partition=[e.partition for e in events])
