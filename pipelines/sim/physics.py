"""Per-type device physics: coherent signals that respect each type's ranges, rate-of-change limits
and invariants, vectorised over all devices of a type per report step."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.schemas.device_types import DeviceType

F64 = npt.NDArray[np.float64]
Arr = npt.NDArray[Any]

ROC_MARGIN = 0.8        # healthy physics uses at most 80 % of a signal's rate-of-change limit
DECIMALS = 6            # 1e-6 rounding keeps roc honest even 1 ms apart


class Model:
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


class _Thermostat(Model):
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


class _SmartMeter(Model):
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


class _PumpPlc(Model):
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


class _IpCamera(Model):
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


class _InfusionPump(Model):
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


class _Generic(Model):
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


MODELS: dict[str, type[Model]] = {"thermostat": _Thermostat, "smart_meter": _SmartMeter,
                                   "pump_plc": _PumpPlc, "ip_camera": _IpCamera,
                                   "infusion_pump": _InfusionPump}


def model_for(dt: DeviceType, n: int, rng: np.random.Generator) -> Model:
    """The type's physics model, or the generic one when its signals differ from the model's."""
    cls = MODELS.get(dt.name, _Generic)
    if set(cls.SIGNALS) != set(dt.signal_index()):
        cls = _Generic
    return cls(dt, n, rng)

