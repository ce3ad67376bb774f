"""Deterministic IoT fleet simulator: coherent per-type physics, signed telemetry, labelled attacks.

One seeded generator feeds the demo, the tests, model training and the benchmarks, so it is built for
speed: report timestamps are a pure function of (device, step) (hash-based jitter and drops), which lets
`__init__` plan every attack and know its labels up front; the physics is vectorised with numpy per
report step over all devices of a type; the only per-message Python work is building the `Telemetry`
struct, signing it and encoding it with msgspec.

Simulated time runs in fixed slices (independent of the batch size), so the concatenated output of
`batches()` is identical for any `max_events` and on every call.
"""

from __future__ import annotations

import binascii
import contextlib
import gc
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.sim import identity as sim_identity
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.schemas.device_types import MAX_SIGNALS, DeviceType, DeviceTypeTable, Signal
from twinguard.schemas.messages import Auth, Net, Telemetry

ATTACK_CLASSES = ("dos", "scan", "brute_force", "exfiltration", "false_data_injection", "replay",
                  "tampering", "firmware_tampering", *sim_identity.IDENT_THREATS)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]

ROC_MARGIN = 0.8        # healthy physics uses at most 80 % of a signal's rate-of-change limit
DECIMALS = 6            # 1e-6 rounding keeps roc honest even 1 ms apart
JITTER_FRAC = 0.05      # report time jitter, share of the interval
DROP_P = 0.001          # lost messages (a seq gap)
AUTH_FAIL_P = 0.002     # a single benign auth failure (mistyped password, clock skew)
RECONNECT_P = 0.01      # a message that also saw a reconnect (2 connections)
TARGET_SLICE_EVENTS = 16_000
KIND_REGULAR, KIND_EXTRA, KIND_REPLAY, KIND_IDENT = 0, 1, 2, 3
# tampering per message (numbered apart from integrity.SIG_*, which grade a received message)
GENUINE, BAD_SIG, NO_SIG = 0, 1, 2
EXTRA_THREATS = ("dos", "scan", "brute_force")
NEEDS_HISTORY = EXTRA_THREATS + sim_identity.IDENT_THREATS  # extra messages interpolate readings
WINDOW_THREATS = ("dos", "brute_force", "exfiltration", "false_data_injection", "firmware_tampering")
# Signals a tampering attacker alters after signing: ones with roc headroom and no invariant trouble.
TAMPER_SIGNAL = {"thermostat": "setpoint_c", "smart_meter": "power_w", "pump_plc": "valve_open_pct",
                 "ip_camera": "cpu_pct", "infusion_pump": "occlusion_mmhg"}
BROKERS = ("10.0.0.10", "10.0.0.11", "10.0.0.12")
# Documentation ranges (RFC 5737): clearly external, never routable.
EXTERNAL_NETS = ("203.0.113", "198.51.100", "192.0.2")
_SEED_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; validated on construction."""

    devices: int = 500
    duration_s: float = 60.0
    rate: float | None = None      # total fleet events/s of simulated time; None = each type's report_hz
    seed: int = 7
    start_ms: int | None = None    # event time of the first tick; None = now (UTC) rounded to 1 s
    attack_fraction: float = 0.08  # share of devices attacked (>= one per class when devices allow)
    attacks: tuple[str, ...] = ATTACK_CLASSES
    warmup_s: float = 20.0         # no attack starts before start+warmup_s (baselines need history)
    sign: bool = True              # devices sign messages (HMAC)

    def __post_init__(self) -> None:
        """Reject settings the simulator cannot honour, naming the field."""
        if self.devices < 1:
            raise ValueError(f"SimConfig.devices must be >= 1, got {self.devices}")
        if not self.duration_s > 0:
            raise ValueError(f"SimConfig.duration_s must be > 0, got {self.duration_s}")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"SimConfig.rate must be > 0 or None, got {self.rate}")
        if self.rate is not None and self.devices * 1000.0 / self.rate < 1.0:
            raise ValueError(f"SimConfig.rate={self.rate} needs each of {self.devices} devices to "
                             "report more than once per ms; use more devices or a lower rate")
        if not 0.0 <= self.attack_fraction <= 1.0:
            raise ValueError(f"SimConfig.attack_fraction must be in [0, 1], got {self.attack_fraction}")
        unknown = [a for a in self.attacks if a not in ATTACK_CLASSES]
        if unknown:
            raise ValueError(f"SimConfig.attacks: unknown class(es) {', '.join(unknown)} "
                             f"(known: {', '.join(ATTACK_CLASSES)})")
        if self.warmup_s < 0:
            raise ValueError(f"SimConfig.warmup_s must be >= 0, got {self.warmup_s}")
        if self.start_ms is not None and self.start_ms < 0:
            raise ValueError(f"SimConfig.start_ms must be >= 0, got {self.start_ms}")


@dataclass(frozen=True)
class SimBatch:
    """A time-ordered chunk of encoded telemetry: Kafka keys (device id), values and send times."""

    keys: list[bytes]
    values: list[bytes]
    ts_ms: I64  # send time per message (a replay's old ts stays inside its JSON), non-decreasing

    def __len__(self) -> int:
        """Number of messages."""
        return len(self.values)


class _NoMessages(Exception):
    """An attack window holds no message of its device."""


@dataclass
class _Attack:
    """One planned attack: its window (ms since start, inclusive) and concrete messages."""

    dev: int
    threat: str
    a0: int
    a1: int
    params: dict[str, float] = field(default_factory=dict)
    extra_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # extra / replay send times
    extra_aux: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # scan port; replay slot
    ks: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # tampered / captured steps
    modes: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # tampering: BAD_SIG / NO_SIG
    slot0: int = 0  # replay: capture slot of ks[0]
    label_ts: tuple[int, int] = (0, 0)


# ----------------------------------------------------------------------------------------- physics


class _Model:
    """Physics of one device type for n devices; step() advances by dt seconds (one per device)."""

    SIGNALS: tuple[str, ...] = ()
    n_z, n_u = 1, 1  # standard normals and uniforms consumed per device per step

    def __init__(self, dt: DeviceType, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.idx = dt.signal_index()
        self.lo = np.array([s.min for s in dt.signals])
        self.hi = np.array([s.max for s in dt.signals])
        self.rmin = np.array([s.roc_min for s in dt.signals])
        self.rmax = np.array([s.roc_max for s in dt.signals])
        self.down, self.up = ROC_MARGIN * self.rmin, ROC_MARGIN * self.rmax
        self.init(rng)

    def init(self, rng: np.random.Generator) -> None:
        """Draw per-device constants and the initial state."""

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """Advance by dt (s) and return the reported values [n, K] in signal order."""
        raise NotImplementedError

    def traffic_scale(self) -> F64 | None:
        """Per-device factor on bytes sent this step (None = 1)."""
        return None

    def lim(self, name: str, prev: Arr, cand: Arr, dt: F64,
            lo: float | Arr | None = None, hi: float | Arr | None = None) -> F64:
        """cand clipped to its band and to ROC_MARGIN of the roc limits from prev over dt."""
        j = self.idx[name]
        # ufuncs, not np.clip: its Python wrapper costs more than the math on ~100 devices
        c = np.minimum(np.maximum(cand, self.lo[j] if lo is None else lo),
                       self.hi[j] if hi is None else hi)
        out: F64 = np.minimum(np.maximum(c, prev + self.down[j] * dt), prev + self.up[j] * dt)
        return out

    def out(self, **cols: Arr) -> F64:
        """Stack named columns into [n, K] in the type's signal order."""
        res = np.empty((self.n, len(self.idx)))
        for name, col in cols.items():
            res[:, self.idx[name]] = col
        return res


class _Thermostat(_Model):
    """Room temperature relaxes to ambient, a hysteresis relay heats toward the setpoint."""

    SIGNALS = ("temperature_c", "setpoint_c", "humidity_pct", "heating")
    SETPOINTS = np.arange(18.0, 24.5, 0.5)
    n_z, n_u = 2, 2

    def init(self, rng: np.random.Generator) -> None:
        n = self.n
        self.amb, self.tau = rng.uniform(8, 18, n), rng.uniform(600, 2400, n)
        self.power, self.hyst = rng.uniform(0.01, 0.03, n), rng.uniform(0.2, 0.5, n)
        self.sp_target = rng.choice(self.SETPOINTS, n)
        self.sp = self.sp_target.copy()
        self.true_t = self.sp + rng.uniform(-1.0, 1.0, n)
        self.temp = self.true_t.copy()
        self.heat = (self.true_t < self.sp).astype(np.float64)
        self.hum_mean = rng.uniform(30, 60, n)
        self.hum = self.hum_mean + rng.normal(0, 2, n)
        self.rh = self.hum.copy()

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        change = u[:, 0] < dt / 900.0  # someone touches the dial every ~15 min
        pick = self.SETPOINTS[(u[:, 1] * len(self.SETPOINTS)).astype(np.int64)]
        self.sp_target = np.where(change, pick, self.sp_target)
        self.sp = self.lim("setpoint_c", self.sp, self.sp_target, dt)
        self.heat = np.where(self.true_t < self.sp - self.hyst, 1.0,
                             np.where(self.true_t > self.sp + self.hyst, 0.0, self.heat))
        self.true_t = self.true_t + dt * ((self.amb - self.true_t) / self.tau + self.heat * self.power)
        self.temp = self.lim("temperature_c", self.temp, self.true_t + 0.03 * z[:, 0], dt)
        self.hum = (self.hum + (self.hum_mean - self.hum) * np.minimum(dt / 600.0, 1.0)
                    + 0.05 * np.sqrt(dt) * z[:, 1])
        self.rh = self.lim("humidity_pct", self.rh, self.hum, dt, 5.0, 95.0)
        return self.out(temperature_c=self.temp, setpoint_c=self.sp, humidity_pct=self.rh,
                        heating=self.heat)


class _SmartMeter(_Model):
    """Mains voltage ~230 V, load current random walk with appliance steps, P = V*I*pf, E = integral P."""

    SIGNALS = ("voltage_v", "current_a", "power_w", "energy_kwh")
    n_z, n_u = 2, 2

    def init(self, rng: np.random.Generator) -> None:
        n = self.n
        self.v0 = 230.0 + rng.uniform(-1.5, 1.5, n)
        self.volt = self.v0 + rng.normal(0, 0.5, n)
        self.load = rng.uniform(1.0, 12.0, n)
        self.cur = self.load.copy()
        self.pf = rng.uniform(0.85, 0.98, n)  # fixed per device so P/(V*I) is exactly pf
        self.energy = rng.uniform(100.0, 40000.0, n)

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        self.volt = self.lim("voltage_v", self.volt, self.volt + (self.v0 - self.volt)
                             * np.minimum(dt / 20.0, 1.0) + 0.4 * np.sqrt(dt) * z[:, 0], dt,
                             227.0, 233.0)
        jump = u[:, 0] < dt / 90.0  # an appliance switches every ~1.5 min
        self.load = np.where(jump, np.clip(self.load + u[:, 1] * 14.0 - 6.0, 0.5, 40.0), self.load)
        cand = (self.cur + (self.load - self.cur) * np.minimum(dt / 4.0, 1.0)
                + 0.05 * np.sqrt(dt * self.cur) * z[:, 1])
        self.cur = self.lim("current_a", self.cur, cand, dt, 0.5, 40.0)
        power = self.volt * self.cur * self.pf
        self.energy = self.energy + power * dt / 3.6e6
        return self.out(voltage_v=self.volt, current_a=self.cur, power_w=power,
                        energy_kwh=self.energy)


class _PumpPlc(_Model):
    """Duty-cycled pump behind a valve; soft start/stop so pump_on reads 0 only once flow is ~0."""

    SIGNALS = ("flow_lpm", "pressure_bar", "pump_on", "valve_open_pct")
    n_z, n_u = 3, 3

    def init(self, rng: np.random.Generator) -> None:
        n = self.n
        self.qmax = rng.uniform(300, 900, n)
        self.cmd = (rng.random(n) < 0.6).astype(np.float64)
        self.mean_on, self.mean_off = rng.uniform(60, 300, n), rng.uniform(30, 180, n)
        self.valve_target = rng.uniform(40, 90, n)
        self.valve = self.valve_target.copy()
        self.flow = self.cmd * self.qmax * np.sqrt(self.valve / 100.0)
        self.p_static, self.p_dyn = rng.uniform(0.5, 2.0, n), rng.uniform(3.0, 8.0, n)
        self.pres = self.p_static + self.p_dyn * (self.flow / self.qmax) ** 2

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        switch = u[:, 0] < dt / np.where(self.cmd > 0, self.mean_on, self.mean_off)
        self.cmd = np.where(switch, 1.0 - self.cmd, self.cmd)
        self.valve_target = np.where(u[:, 1] < dt / 120.0, 30.0 + 70.0 * u[:, 2], self.valve_target)
        cand = (self.valve + (self.valve_target - self.valve) * np.minimum(dt / 10.0, 1.0)
                + 0.2 * np.sqrt(dt) * z[:, 0])
        self.valve = self.lim("valve_open_pct", self.valve, cand, dt, 0.0, 100.0)
        target = self.cmd * self.qmax * np.sqrt(self.valve / 100.0)
        # noise scales with the target so a stopped pump decays to exactly-quiet zero flow
        cand = (self.flow + (target - self.flow) * np.minimum(dt / 3.0, 1.0)
                + 0.014 * target * np.sqrt(dt) * z[:, 1])
        self.flow = self.lim("flow_lpm", self.flow, cand, dt, 0.0, 1200.0)
        pump_on = np.maximum(self.cmd, (self.flow > 5.0).astype(np.float64))
        cand = self.p_static + self.p_dyn * (self.flow / self.qmax) ** 2 + 0.03 * z[:, 2]
        self.pres = self.lim("pressure_bar", self.pres, cand, dt, 0.0, 16.0)
        return self.out(flow_lpm=self.flow, pressure_bar=self.pres, pump_on=pump_on,
                        valve_open_pct=self.valve)


class _IpCamera(_Model):
    """Fixed fps, bitrate = fps * bits-per-frame with AR(1) scene noise, cpu and housing temp follow."""

    SIGNALS = ("fps", "bitrate_kbps", "cpu_pct", "temp_c")
    n_z, n_u = 3, 1

    def init(self, rng: np.random.Generator) -> None:
        n = self.n
        self.fps = rng.choice(np.array([15.0, 25.0, 30.0]), n)
        self.nominal = self.fps * rng.uniform(60, 200, n)  # kbit per frame 60..200
        self.ar = rng.normal(0, 0.08, n)
        self.br = self.nominal * (1.0 + self.ar)
        self.cpu_base = rng.uniform(22, 45, n)
        self.cpu = self.cpu_base.copy()
        self.amb = rng.uniform(30, 50, n)
        self.temp = self.amb.copy()

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        a = np.exp(-dt / 10.0)
        self.ar = self.ar * a + 0.08 * np.sqrt(1.0 - a * a) * z[:, 0]
        self.br = self.lim("bitrate_kbps", self.br, self.nominal * (1.0 + self.ar), dt,
                           0.75 * self.nominal, 1.25 * self.nominal)
        cand = self.cpu_base + 10.0 * (self.br / self.nominal - 1.0) + 1.0 * z[:, 1]
        self.cpu = self.lim("cpu_pct", self.cpu, cand, dt, 20.0, 60.0)
        cand = (self.temp + (self.amb + 0.2 * (self.cpu - 40.0) - self.temp)
                * np.minimum(dt / 300.0, 1.0) + 0.02 * np.sqrt(dt) * z[:, 2])
        self.temp = self.lim("temp_c", self.temp, cand, dt)
        return self.out(fps=self.fps, bitrate_kbps=self.br, cpu_pct=self.cpu, temp_c=self.temp)

    def traffic_scale(self) -> F64:
        """Video bytes follow the bitrate."""
        scale: F64 = self.br / self.nominal
        return scale


class _InfusionPump(_Model):
    """Fixed infusion rate, volume integrates it, battery drains, occlusion pressure stays low."""

    SIGNALS = ("rate_ml_h", "volume_infused_ml", "battery_pct", "occlusion_mmhg")
    n_z, n_u = 1, 1

    def init(self, rng: np.random.Generator) -> None:
        n = self.n
        self.rate = np.round(rng.uniform(5, 250, n), 1)
        self.vol = rng.uniform(0, 300, n)
        self.batt = rng.uniform(40, 100, n)
        self.drain = rng.uniform(0.0005, 0.003, n)
        self.occ_base = rng.uniform(5, 30, n)
        self.occ = self.occ_base.copy()

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        self.vol = np.minimum(self.vol + self.rate / 3600.0 * dt, 5000.0)
        self.batt = np.maximum(self.batt - self.drain * dt, 5.0)
        cand = (self.occ + (self.occ_base - self.occ) * np.minimum(dt / 20.0, 1.0)
                + 0.5 * np.sqrt(dt) * z[:, 0])
        self.occ = self.lim("occlusion_mmhg", self.occ, cand, dt, 0.0, 100.0)
        return self.out(rate_ml_h=self.rate, volume_infused_ml=self.vol, battery_pct=self.batt,
                        occlusion_mmhg=self.occ)


class _Generic(_Model):
    """Fallback for device types without a model: bounded random walks, counters, rare bool flips."""

    def init(self, rng: np.random.Generator) -> None:
        span = self.hi - self.lo
        self.is_bool = np.array([lo == 0.0 and hi == 1.0 for lo, hi in zip(self.lo, self.hi, strict=True)])
        self.counter = self.rmin >= 0.0
        self.band_lo, self.band_hi = self.lo + 0.3 * span, self.hi - 0.3 * span
        self.mid = rng.uniform(self.band_lo, self.band_hi, (self.n, len(span)))
        self.x = np.where(self.is_bool, np.round(rng.random((self.n, len(span)))), self.mid)
        self.n_z = self.n_u = len(span)

    def step(self, dt: F64, z: F64, u: F64) -> F64:
        """One report step."""
        span = self.hi - self.lo
        d = dt[:, None]
        walk = self.x + (self.mid - self.x) * np.minimum(d / 60.0, 1.0) + 0.01 * span * np.sqrt(d) * z
        rmax = np.where(np.isfinite(self.rmax) & (self.rmax < 1e17), self.rmax, 0.01 * span)
        count = np.minimum(self.x + 0.3 * rmax * d, self.hi)
        flip = np.where(u < d / 120.0, 1.0 - self.x, self.x)
        cand = np.where(self.is_bool, flip, np.where(self.counter, count, walk))
        lo = np.where(self.is_bool | self.counter, self.lo, self.band_lo)
        hi = np.where(self.is_bool | self.counter, self.hi, self.band_hi)
        c = np.clip(cand, lo, hi)
        low = np.where(self.is_bool, 0.0, self.x + ROC_MARGIN * self.rmin * d)
        high = np.where(self.is_bool, 1.0, self.x + ROC_MARGIN * self.rmax * d)
        self.x = np.clip(c, low, high)
        return np.array(self.x, dtype=np.float64)


MODELS: dict[str, type[_Model]] = {"thermostat": _Thermostat, "smart_meter": _SmartMeter,
                                   "pump_plc": _PumpPlc, "ip_camera": _IpCamera,
                                   "infusion_pump": _InfusionPump}


def _model_for(dt: DeviceType, n: int, rng: np.random.Generator) -> _Model:
    """The type's physics model, or the generic one when its signals differ from the model's."""
    cls = MODELS.get(dt.name, _Generic)
    if set(cls.SIGNALS) != set(dt.signal_index()):
        cls = _Generic
    return cls(dt, n, rng)


# ------------------------------------------------------------------- false data injection recipes


def _fdi_thermostat(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """Temperature jumps by tens of degrees (beyond 0.5 degC/s), sometimes out of range."""
    v[:, ix["temperature_c"]] += p["offset"]


def _fdi_meter(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """Voltage steps by 60..110 V and reported power no longer equals V*I*pf."""
    v[:, ix["voltage_v"]] += p["dv"]
    v[:, ix["power_w"]] = p["ratio"] * v[:, ix["voltage_v"]] * v[:, ix["current_a"]]


def _fdi_pump(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """Flow jumps by hundreds of l/min while the PLC claims the pump is off."""
    v[:, ix["flow_lpm"]] += p["dflow"]
    v[:, ix["pump_on"]] = 0.0


def _fdi_camera(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """Impossible bits per frame and a housing temperature jump."""
    v[:, ix["bitrate_kbps"]] = v[:, ix["fps"]] * p["kbit_per_frame"]
    v[:, ix["temp_c"]] += p["dtemp"]


def _fdi_infusion(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """Rate jumps far beyond its roc limit and the delivered volume runs backwards."""
    v[:, ix["rate_ml_h"]] += p["drate"]
    v[:, ix["volume_infused_ml"]] -= p["dvol"]


def _fdi_generic(v: F64, ix: dict[str, int], p: dict[str, float]) -> None:
    """A sustained offset on one signal."""
    v[:, int(p["signal"])] += p["offset"]


FDI: dict[str, Callable[[F64, dict[str, int], dict[str, float]], None]] = {
    "thermostat": _fdi_thermostat, "smart_meter": _fdi_meter, "pump_plc": _fdi_pump,
    "ip_camera": _fdi_camera, "infusion_pump": _fdi_infusion}


def _fdi_params(dt: DeviceType, generic: bool, iv_s: float, rng: np.random.Generator
                ) -> dict[str, float]:
    """Random attack intensity for the type's FDI recipe."""
    sign = float(rng.choice(np.array([-1.0, 1.0])))
    if generic:
        j = next((i for i, s in enumerate(dt.signals) if not (s.min == 0.0 and s.max == 1.0)), 0)
        s = dt.signals[j]
        roc = min(abs(s.roc_min), abs(s.roc_max), (s.max - s.min) / max(iv_s, 1e-3))
        step = max(rng.uniform(5, 15) * roc * iv_s, rng.uniform(0.2, 0.6) * (s.max - s.min))
        return {"signal": float(j), "offset": sign * step}
    if dt.name == "thermostat":
        return {"offset": sign * rng.uniform(6, 45)}
    if dt.name == "smart_meter":
        ratio = rng.uniform(0.05, 0.4) if rng.random() < 0.5 else rng.uniform(1.2, 3.0)
        return {"dv": sign * rng.uniform(60, 110), "ratio": ratio}
    if dt.name == "pump_plc":
        return {"dflow": rng.uniform(300, 1000)}
    if dt.name == "ip_camera":
        return {"kbit_per_frame": rng.uniform(1500, 4000), "dtemp": rng.uniform(15, 40)}
    return {"drate": rng.uniform(500, 1100), "dvol": rng.uniform(5, 100)}


def _tamper_signal(dt: DeviceType) -> int:
    """Index of the signal a tampering attacker changes (roc headroom, invariant-safe)."""
    ix = dt.signal_index()
    if dt.name in TAMPER_SIGNAL and TAMPER_SIGNAL[dt.name] in ix:
        return ix[TAMPER_SIGNAL[dt.name]]
    in_inv = {n for inv in dt.invariants for n in (inv.a, inv.b, inv.c)}

    def headroom(s: Signal) -> float:
        """Allowed change per unit of range; bools and invariant members rank last."""
        if s.min == 0.0 and s.max == 1.0:
            return -2.0
        return min(-s.roc_min, s.roc_max) / (s.max - s.min) - (1.0 if s.name in in_inv else 0.0)

    return ix[max(dt.signals, key=headroom).name]


# --------------------------------------------------------------------------------- event columns


@dataclass
class _Events:
    """Columns of a set of events (one row per message, dropped ones included)."""

    ts: I64
    dev: I64
    kind: I64
    tag: I64  # replay capture slot: written (regular) or re-sent (replay); -1 otherwise
    sig: F64  # [n, MAX_SIGNALS]
    bin: I64
    bout: I64
    pin: I64
    pout: I64
    conn: I64
    port: I64
    alt: Bools  # exfiltration destination
    fail: I64
    succ: I64
    mode: I64  # GENUINE / BAD_SIG / NO_SIG (tampering)
    tval: F64  # tampered signal value
    fwmod: Bools
    drop: Bools

    def take(self, idx: Arr) -> _Events:
        """Rows selected by a boolean mask or index array."""
        return _Events(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list[_Events]) -> _Events:
        """All parts' rows, in order."""
        return _Events(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in fields(_Events)))

    @staticmethod
    def empty(n: int) -> _Events:
        """n rows of neutral values (callers fill what they use)."""
        z = np.zeros(n, np.int64)
        return _Events(z, z.copy(), z.copy(), np.full(n, -1, np.int64),
                       np.full((n, MAX_SIGNALS), np.nan), z.copy(), z.copy(), z.copy(), z.copy(),
                       z.copy(), z.copy(), np.zeros(n, bool), z.copy(), z.copy(), z.copy(),
                       np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))


# ------------------------------------------------------------------------------------ simulator


def _splitmix(x: U64) -> U64:
    """SplitMix64 finaliser, vectorised (uint64 arithmetic wraps, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: U64 = x ^ (x >> np.uint64(31))
    return out


class FleetSimulator:
    """Seeded fleet of simulated devices; `batches()` yields their time-ordered encoded telemetry."""

    def __init__(self, cfg: SimConfig, types: DeviceTypeTable, keys: KeyRing) -> None:
        self.cfg, self.types, self.keyring = cfg, types, keys
        self.start_ms = cfg.start_ms if cfg.start_ms is not None else round(time.time()) * 1000
        self.dur_ms = int(round(cfg.duration_s * 1000))
        seed = cfg.seed & _SEED_MASK
        self._seed = seed
        # streams of the timing hash: 0 = report jitter, 1 = drops
        self._hash_base = [int(x) for x in np.random.SeedSequence([seed, 99]).generate_state(
            2, np.uint64)]
        rng = np.random.default_rng([seed, 0])
        self._setup_devices(rng)
        self._ident_plans: list[sim_identity.IdentityPlan] = []
        self._attacks = self._plan_attacks(np.random.default_rng([seed, 1]))
        self._lookalikes = sim_identity.plan_lookalikes(self, {a.dev for a in self._attacks}, seed)
        self.labels: list[AttackLabel] = sorted(
            (AttackLabel(self.devices[a.dev][0], a.threat, self.start_ms + a.label_ts[0],
                         self.start_ms + a.label_ts[1]) for a in self._attacks),
            key=lambda lb: (lb.start, lb.device_id))
        eps = float(np.sum(1000.0 / self._iv_ms))
        self._slice_ms = int(np.clip(TARGET_SLICE_EVENTS / eps * 1000.0, 100, 10_000))
        # pipelines/sim/activity.py sets this so commanded devices follow (or defy) their commands
        self.control: Any = None

    # ---- set-up

    def _setup_devices(self, rng: np.random.Generator) -> None:
        """Device ids, types, report timing and fixed network/firmware identity."""
        cfg, tt = self.cfg, self.types
        n, nt = cfg.devices, len(tt)
        self.type_of = np.arange(n, dtype=np.int64) % nt  # round robin: balanced type mix
        counters = [0] * nt
        self.devices: list[tuple[str, str]] = []
        for t in self.type_of.tolist():
            self.devices.append((f"{tt.types[t].name}-{counters[t]:06d}", tt.types[t].name))
            counters[t] += 1
        if cfg.rate is None:
            self._iv_ms = 1000.0 / tt.nominal_hz[self.type_of]
        else:
            self._iv_ms = np.full(n, n * 1000.0 / cfg.rate)
        self._phase = rng.random(n)
        self._jit = np.floor(JITTER_FRAC * self._iv_ms).astype(np.int64)
        self._src = [f"10.{16 + 16 * (t % 14) + (i // 62500) % 16}.{(i // 250) % 250}.{i % 250 + 2}"
                     for t, i in zip(self.type_of.tolist(), self._per_type_index(), strict=True)]
        self._dst = [BROKERS[i] for i in rng.integers(0, len(BROKERS), n).tolist()]
        self._fw, self._port = [], []
        self._base_out, self._base_in = np.empty(n), np.empty(n)
        for d, t in enumerate(self.type_of.tolist()):
            dt = tt.types[t]
            fw = dt.firmware or ("1.0.0",)
            self._fw.append(str(fw[int(rng.integers(len(fw)))]))
            ports = list(dt.simulate.get("dst_ports", [8883]))
            self._port.append(int(ports[int(rng.integers(len(ports)))]))
            self._base_out[d] = float(dt.simulate.get("bytes_out", 200)) * rng.uniform(0.8, 1.25)
            self._base_in[d] = float(dt.simulate.get("bytes_in", 80)) * rng.uniform(0.8, 1.25)
        self._fw_mod = list(self._fw)
        self._ids, self._types = [d[0] for d in self.devices], [d[1] for d in self.devices]
        self._ext = list(self._dst)

    def _per_type_index(self) -> list[int]:
        """Each device's index among devices of its type."""
        counters = [0] * len(self.types)
        out = []
        for t in self.type_of.tolist():
            out.append(counters[t])
            counters[t] += 1
        return out

    def _u01(self, stream: int, dev: Arr, k: Arr) -> F64:
        """Uniform [0, 1) that depends only on (seed, stream, device, step): timing is a pure function."""
        h = _splitmix(_splitmix(np.asarray(dev, np.uint64) + np.uint64(self._hash_base[stream]))
                      ^ np.asarray(k, np.uint64))
        u: F64 = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return u

    def _reg_ts(self, dev: Arr, k: Arr) -> I64:
        """Report time (ms since start) of device step k: phase + k intervals + jitter, floored."""
        iv = self._iv_ms[dev]
        base = np.floor((self._phase[dev] + k) * iv).astype(np.int64)
        jit = np.floor(self._u01(0, dev, k) * (self._jit[dev] + 1)).astype(np.int64)
        out: I64 = base + jit
        return out

    def _dropped(self, dev: Arr, k: Arr) -> Bools:
        """Whether device step k is lost on the way (its seq is skipped)."""
        out: Bools = self._u01(1, dev, k) < DROP_P
        return out

    def _steps_between(self, d: int, a: int, b: int) -> tuple[I64, I64, Bools]:
        """Steps of device d with report time in [a, b] (and inside the run): ks, ts, kept."""
        iv = float(self._iv_ms[d])
        ks = np.arange(max(int(a // iv) - 2, 0), int(b // iv) + 2, dtype=np.int64)
        ts = self._reg_ts(np.full(len(ks), d), ks)
        m = (ts >= a) & (ts <= b) & (ts < self.dur_ms)
        ks, ts = ks[m], ts[m]
        return ks, ts, ~self._dropped(np.full(len(ks), d), ks)

    def _plan_attacks(self, rng: np.random.Generator) -> list[_Attack]:
        """Choose attacked devices, classes (round robin over a shuffle) and concrete messages."""
        cfg, n = self.cfg, self.cfg.devices
        if not cfg.attacks or cfg.attack_fraction <= 0.0:
            return []
        count = round(cfg.attack_fraction * n)
        if n >= len(cfg.attacks):
            count = max(count, len(cfg.attacks))
        count = min(max(count, 1), n)
        chosen = rng.choice(n, size=count, replace=False).tolist()
        classes = list(cfg.attacks)
        rng.shuffle(classes)
        hi = max(self.dur_ms - 15_000, 0)
        lo = min(int(cfg.warmup_s * 1000), hi)  # a run too short for warmup + 15 s starts late
        attacks, slot = [], 0
        for i, d in enumerate(chosen):
            threat = classes[i % len(classes)]
            # never before the device's first report: floods interpolate from it, replays need it
            first = int(self._reg_ts(np.array([d]), np.zeros(1, np.int64))[0])
            lo_t = min(max(lo, sim_identity.IDENT_START_MS), hi) if (
                threat in sim_identity.IDENT_THREATS) else lo
            a0 = max(int(rng.integers(lo_t, hi + 1)), first + 1)
            a1 = self.dur_ms - 1 if threat in ("firmware_tampering", "hijack") else min(
                a0 + int(rng.integers(10_000, 20_001)), self.dur_ms - 1)
            at = _Attack(int(d), threat, a0, a1)
            try:
                slot = self._plan_one(at, rng, slot)
            except _NoMessages:  # a very short run: widen to everything after the first report
                at = _Attack(int(d), threat, first, self.dur_ms - 1)
                try:
                    slot = self._plan_one(at, rng, slot)
                except _NoMessages:
                    raise ValueError(f"duration_s={cfg.duration_s} is too short to place the "
                                     f"'{threat}' attack on {self.devices[d][0]}; use a longer "
                                     "run or attack_fraction=0") from None
            attacks.append(at)
        return attacks

    def _plan_one(self, at: _Attack, rng: np.random.Generator, slot: int) -> int:
        """Fill in one attack's messages and label interval; returns the next free capture slot."""
        if at.a1 < at.a0:
            raise _NoMessages
        d, t = at.dev, int(self.type_of[at.dev])
        dt, hz = self.types.types[t], 1000.0 / float(self._iv_ms[at.dev])
        _ks, reg_all, kept = self._steps_between(d, at.a0, at.a1)
        reg = reg_all[kept]
        label: list[I64] = [reg]
        if at.threat in EXTRA_THREATS:
            if at.threat == "dos":
                rate = rng.uniform(8, 30) * hz
            elif at.threat == "scan":
                # >= 6 probes/s: even a window that sees only 5 s of the scan gets 30 ports
                rate = max(rng.uniform(3, 10) * hz, rng.uniform(6, 12))
            else:
                rate = rng.uniform(2, 4) * hz
            at.extra_ts = self._times(rng, at.a0, at.a1, rate, reg_all)
            label = [at.extra_ts] if at.threat == "scan" else [reg, at.extra_ts]
            if at.threat == "scan":
                m = len(at.extra_ts)
                if rng.random() < 0.5:  # sequential sweep
                    first = int(rng.integers(1, max(1025 - m, 2)))
                    ports = (first - 1 + np.arange(m)) % 1024 + 1
                else:  # random order without repeats (cycles if the scan is long)
                    ports = np.resize(rng.permutation(1024) + 1, m)
                own = self._port[d]  # a probe of its usual port would look like normal traffic
                at.extra_aux = np.where(ports == own, own % 1024 + 1, ports).astype(np.int64)
        elif at.threat in sim_identity.IDENT_THREATS:
            label = [sim_identity.plan_attack(self, at, rng, hz, reg_all)]
        elif at.threat == "exfiltration":
            net = EXTERNAL_NETS[int(rng.integers(len(EXTERNAL_NETS)))]
            self._ext[d] = f"{net}.{int(rng.integers(2, 255))}"
            at.params = {"mult": rng.uniform(15, 100), "port": float(rng.choice([443, 8443]))}
        elif at.threat == "false_data_injection":
            generic = FDI.get(dt.name) is None or set(MODELS[dt.name].SIGNALS) != set(
                dt.signal_index())
            at.params = _fdi_params(dt, generic, 1.0 / hz, rng)
            at.params["generic"] = float(generic)
        elif at.threat == "replay":
            slot = self._plan_replay(at, rng, slot, hz)
            label = [at.extra_ts]
        elif at.threat == "tampering":
            ks = _ks[kept]
            pick = np.zeros(len(ks), bool)
            count = min(int(np.ceil(rng.uniform(0.5, 1.0) * len(ks))), len(ks))
            pick[rng.choice(len(ks), size=count, replace=False)] = True
            at.ks = ks[pick]
            p_missing = rng.uniform(0.0, 0.5)
            at.modes = np.where(rng.random(len(at.ks)) < p_missing, NO_SIG, BAD_SIG)
            at.params = {"frac": rng.uniform(0.02, 0.08)}
            label = [reg[pick]]
        elif at.threat == "firmware_tampering":
            suffix = ("-mod", "-dev", "+dbg", f"-{int(rng.integers(0, 1 << 16)):04x}")
            self._fw_mod[d] = self._fw[d] + suffix[int(rng.integers(len(suffix)))]
        all_ts = np.concatenate(label)
        if not len(all_ts) or (at.threat == "replay" and not len(at.ks)):
            raise _NoMessages
        at.label_ts = (int(all_ts.min()), int(all_ts.max()))
        return slot

    def _plan_replay(self, at: _Attack, rng: np.random.Generator, slot: int, hz: float) -> int:
        """Capture the device's last 3..20 genuine messages before the attack; re-send at 2..5/s."""
        want = int(rng.integers(3, 21))
        back = int(np.ceil(want / hz * 1000.0 * 1.5)) + 2000  # enough history despite drops
        ks, _ts, kept = self._steps_between(at.dev, max(at.a0 - back, 0), at.a0 - 1)
        ks = ks[kept][-want:]
        if not len(ks):  # a run too short for the warm-up: capture the first report, replay after it
            ks, ts, kept = self._steps_between(at.dev, at.a0, at.a1 - 1)
            if not kept.any():
                raise _NoMessages
            ks, at.a0 = ks[kept][:1], int(ts[kept][0]) + 1
        at.ks, at.slot0 = ks, slot
        at.extra_ts = self._times(rng, at.a0, at.a1, rng.uniform(2, 5), np.zeros(0, np.int64))
        at.extra_aux = slot + np.arange(len(at.extra_ts), dtype=np.int64) % len(ks)
        return slot + len(ks)

    @staticmethod
    def _times(rng: np.random.Generator, a0: int, a1: int, rate: float, avoid: I64) -> I64:
        """Random (Poisson-like) send times at `rate`/s in [a0, a1], none on an `avoid` ms."""
        n = max(int(round((a1 - a0) * rate / 1000.0)), 1)
        ts = np.unique(np.rint(rng.uniform(a0, a1, n)).astype(np.int64))
        out: I64 = np.setdiff1d(ts, avoid)
        return out

    # ---- public

    def expected_events(self) -> int:
        """Approximate number of messages `batches()` yields (for progress bars)."""
        regular = float(np.sum(self.dur_ms / self._iv_ms)) * (1.0 - DROP_P)
        extra = sum(len(a.extra_ts) for a in self._attacks)
        return int(round(regular)) + extra

    def batches(self, max_events: int = 5000) -> Iterator[SimBatch]:
        """Time-ordered chunks of at most max_events messages covering the whole duration."""
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        keys: list[bytes] = []
        values: list[bytes] = []
        stamps: list[I64] = []
        for k, v, ts in _Run(self).slices():
            keys += k
            values += v
            stamps.append(ts)
            if len(values) < max_events:
                continue
            all_ts, i = np.concatenate(stamps), 0
            while len(values) - i >= max_events:
                j = i + max_events
                yield SimBatch(keys[i:j], values[i:j], all_ts[i:j])
                i = j
            keys, values, stamps = keys[i:], values[i:], [all_ts[i:]]
        if values:
            yield SimBatch(keys, values, np.concatenate(stamps))


# --------------------------------------------------------------------------------------- one run


@dataclass
class _TypeRun:
    """Per-type physics state during one pass over the simulation."""

    t: int
    dev: I64
    iv_ms: float
    model: _Model
    rng: np.random.Generator
    prev_ts: I64
    attacks: list[tuple[_Attack, int]]  # (attack, column of its device)
    k_next: int = 0


def _touches(at: _Attack, ks: I64, t_lo: int, t_hi: int, iv_ms: float) -> bool:
    """Whether a block of steps (ks, report times t_lo..t_hi) holds anything of the attack."""
    if at.threat in ("replay", "tampering"):
        return bool(len(at.ks)) and int(at.ks[0]) <= int(ks[-1]) and int(at.ks[-1]) >= int(ks[0])
    margin = 4 * iv_ms if at.threat in NEEDS_HISTORY else 0.0  # floods need reports around them
    return at.a0 - margin <= t_hi and at.a1 + margin >= t_lo


class _Run:
    """One pass of `FleetSimulator.batches()`: all mutable state lives here, so passes repeat."""

    def __init__(self, sim: FleetSimulator) -> None:
        self.sim, cfg = sim, sim.cfg
        seed = sim._seed
        self.arng = np.random.default_rng([seed, 3])  # per-message attack intensities
        self.trs: list[_TypeRun] = []
        by_dev = {a.dev: a for a in sim._attacks}
        for t, dt in enumerate(sim.types.types):
            dev = np.flatnonzero(sim.type_of == t).astype(np.int64)
            if not len(dev):
                continue
            iv = float(sim._iv_ms[dev[0]])
            rng = np.random.default_rng([seed, 2, t])
            model = _model_for(dt, len(dev), rng)
            prev = sim._reg_ts(dev, np.zeros(len(dev), np.int64)) - int(round(iv))
            atts = [(by_dev[int(d)], j) for j, d in enumerate(dev.tolist()) if int(d) in by_dev]
            self.trs.append(_TypeRun(t, dev, iv, model, rng, prev, atts))
        self.hist: dict[int, list[tuple[I64, F64]]] = {
            id(a): [] for a in sim._attacks if a.threat in NEEDS_HISTORY}
        self.pending = _Events.empty(0)
        self.extra_attacks = [a for a in sim._attacks if len(a.extra_ts)]
        self.seqs = [0] * cfg.devices
        self.clone_seqs: dict[int, int] = {}
        self.captured: dict[int, bytes] = {}
        self.enc_sorted = msgspec.json.Encoder(order="sorted")
        n = cfg.devices
        tt = sim.types.types
        tsigs = [_SignalsCodec(dt, t) for t, dt in enumerate(tt)]
        self.codec = [tsigs[t] for t in sim.type_of.tolist()]
        self.perm = np.array([c.perm for c in self.codec], np.int64).reshape(n, MAX_SIGNALS)
        # hmac.digest() re-derives the key pads on every call; copying prepared states is ~2.5x faster
        pads = [_hmac_pads(sim.keyring.key(sim.devices[d][0])) for d in range(n)]
        self.ipads, self.opads = [p[0] for p in pads], [p[1] for p in pads]
        self.kbytes = [sim.devices[d][0].encode() for d in range(n)]
        self.control = sim.control.runner() if sim.control is not None else None

    def slices(self) -> Iterator[tuple[list[bytes], list[bytes], I64]]:
        """Encoded messages slice by slice of simulated time."""
        sim, t0 = self.sim, 0
        while t0 < sim.dur_ms:
            t1 = min(t0 + sim._slice_ms, sim.dur_ms)
            parts = [self.pending] + [self._advance(tr, t1) for tr in self.trs]
            allev = _Events.concat(parts)
            due = allev.ts < t1
            self.pending = allev.take(~due)
            ev = _Events.concat([allev.take(due), *self._attack_messages(t0, t1)])
            ev = ev.take(np.lexsort((ev.tag, ev.kind, ev.dev, ev.ts)))
            with _gc_paused():
                out = self._encode(ev)
            yield out
            t0 = t1

    # ---- regular reports

    def _advance(self, tr: _TypeRun, t1: int) -> _Events:
        """Physics for all steps needed to cover t1 plus two intervals of look-ahead."""
        sim = self.sim
        k_stop = int(np.ceil((t1 + 2) / tr.iv_ms)) + 2
        if k_stop <= tr.k_next:
            return _Events.empty(0)
        ks = np.arange(tr.k_next, k_stop, dtype=np.int64)
        n_s, n = len(ks), len(tr.dev)
        ts = sim._reg_ts(tr.dev[None, :], ks[:, None])
        dt = np.diff(np.vstack([tr.prev_ts[None, :], ts]), axis=0) / 1000.0
        m = tr.model
        z = tr.rng.standard_normal((n_s, n, m.n_z))
        u = tr.rng.random((n_s, n, m.n_u))
        sig = np.full((n_s, n, MAX_SIGNALS), np.nan)
        kk = len(m.idx)
        scale = np.ones((n_s, n))
        for s in range(n_s):
            if self.control is not None:
                self.control.before_step(tr.t, tr.dev, m, ts[s], dt[s], u[s])
            sig[s, :, :kk] = m.step(dt[s], z[s], u[s])
            sc = m.traffic_scale()
            if sc is not None:
                scale[s] = sc
        sig = np.round(sig, DECIMALS)
        ev = self._regular_columns(tr, ks, ts, sig, scale)
        t_lo, t_hi = int(ts[0].min()), int(ts[-1].max())
        for at, j in tr.attacks:
            if _touches(at, ks, t_lo, t_hi, tr.iv_ms):
                self._apply_attack(tr, at, j, ks, ts, sig, ev)
        tr.k_next, tr.prev_ts = k_stop, ts[-1]
        flat = _Events(*(a.reshape(n_s * n, *a.shape[2:]) for a in (getattr(ev, f.name)
                                                                     for f in fields(ev))))
        return flat.take(flat.ts < sim.dur_ms)

    def _regular_columns(self, tr: _TypeRun, ks: I64, ts: I64, sig: F64, scale: F64) -> _Events:
        """Healthy network/auth counters for the [steps, devices] grid (arrays kept 2-D here)."""
        sim, rng = self.sim, tr.rng
        shape = ts.shape
        zn = rng.standard_normal((2, *shape))
        un = rng.random((3, *shape))
        bout = np.maximum(np.rint(sim._base_out[tr.dev] * scale * np.exp(0.12 * zn[0])), 1)
        bin_ = np.maximum(np.rint(sim._base_in[tr.dev] * np.exp(0.15 * zn[1])), 1)
        bout, bin_ = bout.astype(np.int64), bin_.astype(np.int64)
        sim_identity.apply_bursts(sim, tr.dev, ts, bout, bin_)
        fail = (un[0] < AUTH_FAIL_P).astype(np.int64)
        succ = np.maximum(fail, (un[1] < 0.01).astype(np.int64))  # a failure is followed by a retry
        ports = np.array([sim._port[d] for d in tr.dev.tolist()], np.int64)
        ev = _Events(
            ts=ts, dev=np.broadcast_to(tr.dev, shape).copy(),
            kind=np.full(shape, KIND_REGULAR, np.int64), tag=np.full(shape, -1, np.int64),
            sig=sig, bin=bin_, bout=bout, pin=1 + bin_ // 1200,
            pout=1 + bout // 1200 + (un[2] < 0.3), conn=1 + (un[2] > 1.0 - RECONNECT_P),
            port=np.broadcast_to(ports, shape).copy(), alt=np.zeros(shape, bool), fail=fail,
            succ=succ, mode=np.zeros(shape, np.int64), tval=np.zeros(shape),
            fwmod=np.zeros(shape, bool), drop=sim._dropped(tr.dev[None, :], ks[:, None]))
        ev.pout = ev.pout.astype(np.int64)
        ev.conn = ev.conn.astype(np.int64)
        return ev

    def _apply_attack(self, tr: _TypeRun, at: _Attack, j: int, ks: I64, ts: I64, sig: F64,
                      ev: _Events) -> None:
        """Mark or alter the attacked device's regular reports in this block (column j)."""
        col = ts[:, j]
        if at.threat in NEEDS_HISTORY and col[-1] >= at.a0 - 4 * tr.iv_ms and (
                col[0] <= at.a1 + 4 * tr.iv_ms):
            self.hist[id(at)].append((col.copy(), sig[:, j, :].copy()))
        if at.threat == "replay":
            hit = np.isin(ks, at.ks)
            slots = np.searchsorted(at.ks, ks[hit])
            ev.tag[hit, j] = at.slot0 + slots
            return
        if at.threat == "tampering":
            self._tamper(tr, at, j, ks, sig, ev)
            return
        rows = np.flatnonzero((col >= at.a0) & (col <= at.a1))
        if at.threat not in WINDOW_THREATS or not len(rows):
            return
        a, r = self.arng, len(rows)
        if at.threat == "dos":
            ev.conn[rows, j] = a.integers(5, 51, r)
        elif at.threat == "brute_force":
            ev.fail[rows, j] = a.integers(2, 11, r)
            ev.succ[rows, j] = 0
        elif at.threat == "exfiltration":
            bout = ev.bout[rows, j] * at.params["mult"] * np.exp(0.3 * a.standard_normal(r))
            ev.bout[rows, j] = np.rint(bout).astype(np.int64)
            ev.pout[rows, j] = 1 + ev.bout[rows, j] // 1400
            ev.alt[rows, j] = True
            ev.port[rows, j] = int(at.params["port"])
        elif at.threat == "false_data_injection":
            dtype = self.sim.types.types[tr.t]
            fn = _fdi_generic if at.params["generic"] else FDI[dtype.name]
            block = sig[rows, j, :]
            fn(block, dtype.signal_index(), at.params)
            sig[rows, j, :] = np.round(block, DECIMALS)
        elif at.threat == "firmware_tampering":
            ev.fwmod[rows, j] = True

    def _tamper(self, tr: _TypeRun, at: _Attack, j: int, ks: I64, sig: F64, ev: _Events) -> None:
        """Tampered reports: values nudged after signing (bad sig) or signature stripped."""
        hit = np.flatnonzero(np.isin(ks, at.ks))
        if not len(hit):
            return
        dtype = self.sim.types.types[tr.t]
        k = _tamper_signal(dtype)
        s = dtype.signals[k]
        v = sig[hit, j, k]
        delta = np.abs(v) * at.params["frac"] * self.arng.uniform(0.5, 1.5, len(hit))
        # a tiny value gets a small absolute push up instead, so the change survives rounding
        new = np.where(delta >= 1e-3, v - delta, v + 0.002 * (s.max - s.min))
        new = np.where(new < s.min, v + delta, new)
        ev.tval[hit, j] = np.round(new, DECIMALS)
        ev.mode[hit, j] = at.modes[np.searchsorted(at.ks, ks[hit])]

    # ---- attack-only messages (floods, scans, login storms, replays)

    def _attack_messages(self, t0: int, t1: int) -> list[_Events]:
        """Extra and replayed messages with send time in [t0, t1)."""
        out = []
        for at in self.extra_attacks:
            if at.extra_ts[0] >= t1 or at.extra_ts[-1] < t0:
                continue
            lo, hi = np.searchsorted(at.extra_ts, [t0, t1])
            if hi > lo:
                out.append(self._extra_events(at, lo, hi))
        return out

    def _extra_events(self, at: _Attack, lo: int, hi: int) -> _Events:
        """Messages lo..hi-1 of an attack's extra schedule as event rows."""
        sim, a = self.sim, self.arng
        ts, n, d = at.extra_ts[lo:hi], hi - lo, at.dev
        ev = _Events.empty(n)
        ev.ts, ev.dev[:] = ts, d
        if at.threat == "replay":
            ev.kind[:], ev.tag = KIND_REPLAY, at.extra_aux[lo:hi]
            return ev
        ev.kind[:] = KIND_EXTRA
        ev.sig = self._interpolate(at, ts)
        ev.port[:] = sim._port[d]
        base_out, base_in = sim._base_out[d], sim._base_in[d]
        if at.threat in sim_identity.IDENT_THREATS:
            sim_identity.fill_extra(ev, at, base_out, base_in, sim._port[d], a)
            return ev
        if at.threat == "dos":
            ev.bout = np.rint(base_out * np.exp(0.12 * a.standard_normal(n))).astype(np.int64)
            ev.bin = np.rint(base_in * np.exp(0.15 * a.standard_normal(n))).astype(np.int64)
            ev.conn = a.integers(5, 51, n)
        elif at.threat == "scan":
            ev.bout, ev.bin = a.integers(40, 201, n), a.integers(0, 81, n)
            ev.conn, ev.port = a.integers(2, 11, n), at.extra_aux[lo:hi]
        else:  # brute_force: small login exchanges, each with several failures
            ev.bout, ev.bin = a.integers(100, 401, n), a.integers(60, 301, n)
            ev.conn, ev.fail = a.integers(1, 4, n), a.integers(2, 11, n)
        ev.bout, ev.bin = np.maximum(ev.bout, 1), np.maximum(ev.bin, 0)
        ev.pout, ev.pin = 1 + ev.bout // 1200, 1 + ev.bin // 1200
        return ev

    def _interpolate(self, at: _Attack, ts: I64) -> F64:
        """Signals at extra send times: linear between the surrounding reports (bools: the max)."""
        parts = self.hist[id(at)]
        hts = np.concatenate([p[0] for p in parts])
        hv = np.concatenate([p[1] for p in parts])
        i = np.searchsorted(hts, ts, side="right") - 1
        if i.min() < 0 or i.max() + 1 >= len(hts):
            raise RuntimeError("simulator look-ahead too short for an extra message")
        # later extras are later in time: reports before this slice's last one are done with
        keep = hts[i.max()]
        self.hist[id(at)] = [p for p in parts if p[0][-1] >= keep]
        w = ((ts - hts[i]) / (hts[i + 1] - hts[i]))[:, None]
        v = hv[i] + w * (hv[i + 1] - hv[i])
        dtype = self.sim.types.types[int(self.sim.type_of[at.dev])]
        for k, s in enumerate(dtype.signals):
            if s.min == 0.0 and s.max == 1.0 and s.unit == "bool":
                # max(prev, next) keeps "no flow while off" true across a pump start
                v[:, k] = np.maximum(hv[i, k], hv[i + 1, k])
        out: F64 = np.round(v, DECIMALS)
        return out

    # ---- encoding (the per-message hot loop)

    def _encode(self, ev: _Events) -> tuple[list[bytes], list[bytes], I64]:
        """Build, sign and encode each message; returns keys, values and send times.

        A value is `msgspec.json.encode(event, order="sorted")` of the signed event: the canonical
        (sorted, sig-less) bytes are encoded once, signed, and the sig is spliced in at its sorted
        place (between "seq" and "signals"), which saves a second encode per message.
        """
        sim = self.sim
        keys: list[bytes] = []
        values: list[bytes] = []
        kadd, vadd = keys.append, values.append
        seqs, enc, sign = self.seqs, self.enc_sorted.encode, sim.cfg.sign
        hexlify = binascii.hexlify
        make = [c.make for c in self.codec]
        ids, types, src, dst, fw = sim._ids, sim._types, sim._src, sim._dst, sim._fw
        ipads, opads, kbytes = self.ipads, self.opads, self.kbytes
        special = ((ev.kind == KIND_REPLAY) | ev.drop | (ev.tag >= 0) | ev.alt | (ev.mode != 0)
                   | ev.fwmod | sim_identity.switched(sim._lookalikes, ev.dev, ev.ts)).tolist()
        rows = np.take_along_axis(ev.sig, self.perm[ev.dev], axis=1).tolist()  # sorted-name order
        self.cur = ev
        for i, ts, d, row, bi, bo, pi, po, cn, pt, fl, sc, sp in zip(
                itertools.count(), (ev.ts + sim.start_ms).tolist(), ev.dev.tolist(), rows,
                ev.bin.tolist(), ev.bout.tolist(), ev.pin.tolist(), ev.pout.tolist(),
                ev.conn.tolist(), ev.port.tolist(), ev.fail.tolist(), ev.succ.tolist(), special):
            if sp:
                value = self._special(i, ts, d, row)
                if value is not None:
                    kadd(kbytes[d])
                    vadd(value)
                continue
            seq = seqs[d]
            seqs[d] = seq + 1
            msg = Telemetry(ids[d], types[d], ts, seq, make[d](*row),
                            Net(src[d], dst[d], pt, bi, bo, pi, po, cn),
                            Auth(fl, sc) if fl or sc else _AUTH_NONE, fw[d])
            value = enc(msg)  # == canonical_bytes(msg): sig is None here
            if sign:
                inner = ipads[d].copy()
                inner.update(value)
                outer = opads[d].copy()
                outer.update(inner.digest())
                # the first '"signals":' is the key: inside a JSON string its quotes are escaped
                value = value.replace(b'"signals":', b'"sig":"' + hexlify(outer.digest())
                                      + b'","signals":', 1)
            kadd(kbytes[d])
            vadd(value)
        stamps: I64 = ev.ts[~ev.drop] + sim.start_ms
        return keys, values, stamps

    def _special(self, i: int, ts: int, d: int, row: list[float]) -> bytes | None:
        """Encode event i of the current slice when it is a replay, drop, capture or attack-altered."""
        sim, ev, codec = self.sim, self.cur, self.codec[d]
        if ev.kind[i] == KIND_REPLAY:
            return self.captured[int(ev.tag[i])]
        if ev.kind[i] == KIND_IDENT:
            return sim_identity.message(self, i, ts, d, row)
        seq = self.seqs[d]
        self.seqs[d] = seq + 1
        if ev.drop[i]:
            return None
        signals = codec.make(*row)
        fail, succ = int(ev.fail[i]), int(ev.succ[i])
        rel = ts - sim.start_ms
        net = Net(sim_identity.src_of(sim, d, rel), sim._ext[d] if ev.alt[i] else sim._dst[d],
                  int(ev.port[i]),
                  int(ev.bin[i]), int(ev.bout[i]), int(ev.pin[i]), int(ev.pout[i]),
                  int(ev.conn[i]))
        msg = Telemetry(sim._ids[d], sim._types[d], ts, seq, signals, net, Auth(fail, succ),
                        sim._fw_mod[d] if ev.fwmod[i] else sim_identity.fw_of(sim, d, rel))
        mode = int(ev.mode[i])
        if sim.cfg.sign and mode != NO_SIG:
            inner = self.ipads[d].copy()
            inner.update(self.enc_sorted.encode(msg))
            outer = self.opads[d].copy()
            outer.update(inner.digest())
            msg.sig = outer.hexdigest()
        if mode != GENUINE:
            setattr(signals, codec.tamper_attr, float(ev.tval[i]))  # changed after signing
        value = self.enc_sorted.encode(msg)
        if ev.tag[i] >= 0:
            self.captured[int(ev.tag[i])] = value
        return value


class _SignalsCodec:
    """Per-type msgspec Struct standing in for the signals dict: same JSON, ~1 us less per message.

    Fields are s0..sK-1 renamed to the signal names in sorted order, so the encoding equals the
    sorted-key dict that `canonical_bytes` produces; `perm` reorders a value row to match.
    """

    def __init__(self, dt: DeviceType, t: int) -> None:
        names = [s.name for s in dt.signals]
        order = sorted(range(len(names)), key=lambda j: names[j])
        self.perm = order + list(range(len(names), MAX_SIGNALS))
        attrs = [f"s{p}" for p in range(len(names))]
        self.cls = msgspec.defstruct(f"Signals{t}", [(a, float) for a in attrs],
                                     rename={a: names[order[p]] for p, a in enumerate(attrs)},
                                     gc=False)  # floats only: no cycles possible
        self.tamper_attr = attrs[order.index(_tamper_signal(dt))]
        k = len(names)
        if k == MAX_SIGNALS:
            self.make: Callable[..., Any] = self.cls
        else:
            self.make = lambda *row: self.cls(*row[:k])


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Defer cyclic GC over one slice's encode loop (restored before control leaves the module).

    The loop allocates ~4 GC-tracked structs per message and creates no reference cycles, yet
    those allocations trigger collections that cost ~10 % of the run.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_AUTH_NONE = Auth()  # shared: most messages carry no auth events and nobody mutates it


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC inner/outer key blocks (RFC 2104), to copy per message."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
