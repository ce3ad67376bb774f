"""How attackers falsify readings: per-type false-data-injection recipes and their intensities, and
the signal a tampering attacker alters after signing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from twinguard.pipelines.sim.physics import MODELS
from twinguard.schemas.device_types import DeviceType, Signal

F64 = npt.NDArray[np.float64]
Recipe = Callable[[F64, dict[str, int], dict[str, float]], None]

# Signals a tampering attacker alters after signing: ones with roc headroom and no invariant trouble.
TAMPER_SIGNAL = {"thermostat": "setpoint_c", "smart_meter": "power_w", "pump_plc": "valve_open_pct",
                 "ip_camera": "cpu_pct", "infusion_pump": "occlusion_mmhg"}


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


FDI: dict[str, Recipe] = {
    "thermostat": _fdi_thermostat, "smart_meter": _fdi_meter, "pump_plc": _fdi_pump,
    "ip_camera": _fdi_camera, "infusion_pump": _fdi_infusion}


def needs_generic(dt: DeviceType) -> bool:
    """Whether the type lacks a recipe, or its signals are not the ones its physics model has."""
    return FDI.get(dt.name) is None or set(MODELS[dt.name].SIGNALS) != set(dt.signal_index())


def recipe(dt: DeviceType, generic: bool) -> Recipe:
    """The FDI recipe that alters reports of this type (in place)."""
    return _fdi_generic if generic else FDI[dt.name]


def fdi_params(dt: DeviceType, generic: bool, iv_s: float, rng: np.random.Generator
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


def tamper_signal(dt: DeviceType) -> int:
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

