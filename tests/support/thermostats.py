"""One thermostat's hand-made reports (addresses, logins, traffic) fed to a detectors-only engine."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.support.batches import telemetry_batch
from tests.support.devices import THERMOSTAT, TYPES
from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.decode.hashing import string_hashes
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.settings import DetectionConfig, PipelineConfig, ResponseConfig, RiskConfig
from twinguard.operators.twin.engine import EngineContext, ShardEngine
from twinguard.schemas.device_types import MAX_SIGNALS

T0 = 1_700_000_000_000
HOME, BROKER = "10.16.0.2", "10.0.0.10"


@dataclass
class ThermostatMsg:
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


def thermostat_batch(msgs: list[ThermostatMsg]) -> TelemetryBatch:
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


def rules_engine(pipeline: PipelineConfig | None = None, now: Callable[[], float] = lambda: 0.0,
                 intel: IntelTable | None = None, risk: RiskConfig | None = None) -> ShardEngine:
    """A fresh shard engine with the detectors only (no model), its clock fixed by `now`."""
    ctx = EngineContext(TYPES, Scorer.rules_only(), pipeline or PipelineConfig(), DetectionConfig(),
                        ResponseConfig(), now=now, intel=IntelTable() if intel is None else intel,
                        risk=risk or RiskConfig())
    return ShardEngine.fresh(ctx)


def warm_stream(seconds: int = 60) -> list[ThermostatMsg]:
    """One thermostat at 1 Hz from its usual address to its usual broker."""
    return [ThermostatMsg(T0 + 1000 * k, k) for k in range(seconds)]
