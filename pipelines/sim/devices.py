"""Who the simulated devices are: ids, types, report intervals, network addresses, firmware and
traffic baselines, fixed for a run and drawn from one seeded generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinguard.schemas.device_types import DeviceTypeTable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

BROKERS = ("10.0.0.10", "10.0.0.11", "10.0.0.12")
# Documentation ranges (RFC 5737): clearly external, never routable.
EXTERNAL_NETS = ("203.0.113", "198.51.100", "192.0.2")


@dataclass(frozen=True)
class FleetDevices:
    """The fleet's per-device identity and baselines, indexed by device number."""

    ids: list[str]
    type_names: list[str]
    type_of: I64       # index into the device type table
    iv_ms: F64         # report interval
    phase: F64         # first report at phase * interval
    src: list[str]     # own address
    dst: list[str]     # the broker it talks to
    fw: list[str]
    port: list[int]    # usual destination port
    base_out: F64      # typical bytes per report, out and in
    base_in: F64


def build_devices(n: int, rate: float | None, tt: DeviceTypeTable, rng: np.random.Generator
                  ) -> FleetDevices:
    """n devices of a balanced type mix; `rate` (fleet events/s) overrides each type's report_hz."""
    nt = len(tt)
    type_of = np.arange(n, dtype=np.int64) % nt  # round robin: balanced type mix
    per_type = _per_type_index(type_of, nt)
    names = [tt.types[t].name for t in type_of.tolist()]
    ids = [f"{name}-{i:06d}" for name, i in zip(names, per_type, strict=True)]
    iv_ms = 1000.0 / tt.nominal_hz[type_of] if rate is None else np.full(n, n * 1000.0 / rate)
    phase = rng.random(n)
    src = [f"10.{16 + 16 * (t % 14) + (i // 62500) % 16}.{(i // 250) % 250}.{i % 250 + 2}"
           for t, i in zip(type_of.tolist(), per_type, strict=True)]
    dst = [BROKERS[i] for i in rng.integers(0, len(BROKERS), n).tolist()]
    fws: list[str] = []
    ports: list[int] = []
    base_out, base_in = np.empty(n), np.empty(n)
    for d, t in enumerate(type_of.tolist()):
        dt = tt.types[t]
        fw = dt.firmware or ("1.0.0",)
        fws.append(str(fw[int(rng.integers(len(fw)))]))
        allowed = list(dt.simulate.get("dst_ports", [8883]))
        ports.append(int(allowed[int(rng.integers(len(allowed)))]))
        base_out[d] = float(dt.simulate.get("bytes_out", 200)) * rng.uniform(0.8, 1.25)
        base_in[d] = float(dt.simulate.get("bytes_in", 80)) * rng.uniform(0.8, 1.25)
    return FleetDevices(ids, names, type_of, iv_ms, phase, src, dst, fws, ports, base_out, base_in)


def _per_type_index(type_of: I64, n_types: int) -> list[int]:
    """Each device's index among devices of its type."""
    counters = [0] * n_types
    out = []
    for t in type_of.tolist():
        out.append(counters[t])
        counters[t] += 1
    return out


def outside_address(rng: np.random.Generator) -> str:
    """A random host in one of the external documentation networks."""
    return f"{EXTERNAL_NETS[int(rng.integers(len(EXTERNAL_NETS)))]}.{int(rng.integers(2, 255))}"
