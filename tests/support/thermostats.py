"""One thermostat's hand-made reports: addresses, logins, traffic, as a decoded batch."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from tests.support.batches import telemetry_batch
from tests.support.devices import THERMOSTAT
from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.decode.hashing import string_hashes
from twinguard.schemas.device_types import MAX_SIGNALS

T0 = 1_700_000_000_000
HOME, BROKER = "10.16.0.2", "10.0.0.10"


@dataclass
class Msg:
    ts: int
    seq: int
    src: str = HOME
    dst: str = BROKER
    port: int = 8883
    bout: float = 220.0
    bin: float = 90.0
    ok: float = 0.0
    principal: str | None = None
    device: str = "thermostat-000001"


def address_hash(v: str | None) -> int:
    """The source-address hash as the decoder computes it (0 = none)."""
    return zlib.crc32(v.encode()) + 1 if v else 0


def thermostat_batch(msgs: list[Msg]) -> TelemetryBatch:
    """The messages as one decoded batch: a steady 21 °C room, signed and on one partition."""
    sig = np.full((len(msgs), MAX_SIGNALS), np.nan)
    sig[:, :4] = (21.0, 21.0, 45.0, 0.0)
    return telemetry_batch(
        [m.device for m in msgs], THERMOSTAT, [m.ts for m in msgs], [m.seq for m in msgs], sig,
        src_ips=[m.src for m in msgs], dst_ips=[m.dst for m in msgs],
        principals=[m.principal for m in msgs], bytes_in=[m.bin for m in msgs],
        bytes_out=[m.bout for m in msgs], auth_ok=[m.ok for m in msgs],
        dst_port=[m.port for m in msgs], src_hash=[address_hash(m.src) for m in msgs],
        dst_hash=string_hashes([m.dst for m in msgs]),
        princ_hash=string_hashes([m.principal for m in msgs]))


def warm_stream(seconds: int = 60) -> list[Msg]:
    """One thermostat at 1 Hz from its usual address to its usual broker."""
    return [Msg(T0 + 1000 * k, k) for k in range(seconds)]
