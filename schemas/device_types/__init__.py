"""Device-type twin models (signals, units, ranges, rates of change, invariants) loaded from TOML files.

The files in schemas/device_types/ are the single definition; kernels get them as dense arrays
(`DeviceTypeTable`) so no Python object reaches Numba.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_SIGNALS = 4  # per device-type file (and per-signal feature columns); tables may be wider
INVARIANT_KINDS = {"ratio_between": 1, "implies_zero": 2}
MAX_INVARIANTS = 2
# floor of a signal's learned sigma as a share of its physical range: a level's window mean may not
# claim more precision than 5 % of its range; a state signal's mean is a duty cycle that any
# ordinary switching moves across its whole range, so its deviations never count as sigmas
LEVEL_FLOOR, STATE_FLOOR = 0.05, 1.0


class DeviceTypeError(ValueError):
    """A device-type file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Signal:
    name: str
    unit: str
    min: float
    max: float
    roc_min: float
    roc_max: float
    state: bool = False  # a discrete state (a relay, a valve open/closed), not a measured level


@dataclass(frozen=True)
class Invariant:
    kind: str
    a: str
    b: str
    c: str = ""
    lo: float = 0.0
    hi: float = 0.0
    tol: float = 0.0
    min_denominator: float = 1e-9


@dataclass(frozen=True)
class DeviceType:
    name: str
    description: str
    report_hz: float
    firmware: tuple[str, ...]
    signals: tuple[Signal, ...]
    invariants: tuple[Invariant, ...] = ()
    simulate: dict[str, Any] = field(default_factory=dict)
    control: dict[str, Any] = field(default_factory=dict)  # [control]: commandable set-points
    response: dict[str, Any] = field(default_factory=dict)  # [response]: safe_state, safe set-points

    def signal_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.signals)}


@dataclass(frozen=True)
class DeviceTypeTable:
    """All device types as arrays indexed by type index (the order of `types`)."""

    types: tuple[DeviceType, ...]
    index: dict[str, int]
    signal_index: tuple[dict[str, int], ...]
    firmware: tuple[frozenset[str], ...]
    n_signals: npt.NDArray[np.int64]
    nominal_hz: npt.NDArray[np.float64]
    lo: npt.NDArray[np.float64]  # [T, K]
    hi: npt.NDArray[np.float64]
    roc_min: npt.NDArray[np.float64]
    roc_max: npt.NDArray[np.float64]
    zfloor: npt.NDArray[np.float64]  # [T, K] floor of a signal's baseline sigma (NaN = unbounded)
    inv: npt.NDArray[np.float64]  # [T, J, 7]: kind, a, b, c, lo, hi, tol/min_denominator

    def __len__(self) -> int:
        return len(self.types)

    @property
    def width(self) -> int:
        """Signal columns of every per-signal array (max signals over the types, at least
        MAX_SIGNALS): the shipped types keep 4, a replayed table with 43 tags gets 43."""
        return int(self.lo.shape[1])


def _signal(d: dict[str, Any], where: str) -> Signal:
    try:
        unit = str(d.get("unit", ""))
        s = Signal(str(d["name"]), unit, float(d["min"]), float(d["max"]),
                   float(d.get("roc_min", -1e18)), float(d.get("roc_max", 1e18)),
                   bool(d.get("state", unit == "bool")))
    except KeyError as e:
        raise DeviceTypeError(f"{where}: signal is missing key {e}") from None
    if not s.min < s.max:
        raise DeviceTypeError(f"{where}: signal '{s.name}' needs min < max, got {s.min}..{s.max}")
    return s


def parse_device_type(text: str, where: str) -> DeviceType:
    """Parse one device-type TOML document; `where` names it in error messages."""
    d = tomllib.loads(text)
    try:
        signals = tuple(_signal(s, where) for s in d["signals"])
        invariants = tuple(Invariant(**inv) for inv in d.get("invariants", []))
        dt = DeviceType(str(d["name"]), str(d.get("description", "")), float(d["report_hz"]),
                        tuple(d.get("firmware", [])), signals, invariants, d.get("simulate", {}),
                        d.get("control", {}), d.get("response", {}))
    except (KeyError, TypeError) as e:
        raise DeviceTypeError(f"{where}: {e}") from None
    if not 1 <= len(signals) <= MAX_SIGNALS:
        raise DeviceTypeError(f"{where}: needs 1..{MAX_SIGNALS} signals, got {len(signals)}")
    names = dt.signal_index()
    for inv in invariants:
        if inv.kind not in INVARIANT_KINDS:
            raise DeviceTypeError(f"{where}: invariant kind '{inv.kind}' unknown "
                                  f"(known: {', '.join(INVARIANT_KINDS)})")
        for ref in (inv.a, inv.b, inv.c):
            if ref and ref not in names:
                raise DeviceTypeError(f"{where}: invariant refers to unknown signal '{ref}'")
    if len(invariants) > MAX_INVARIANTS:
        raise DeviceTypeError(f"{where}: at most {MAX_INVARIANTS} invariants per type")
    return dt


def load_device_types(directory: str | Path | None = None) -> DeviceTypeTable:
    """Every *.toml in `directory` (default: the shipped schemas/device_types), sorted by name."""
    if directory is None:
        files = [(f.name, f.read_text()) for f in resources.files("twinguard.schemas").joinpath(
            "device_types").iterdir() if f.name.endswith(".toml")]
    else:
        files = [(p.name, p.read_text()) for p in Path(directory).glob("*.toml")]
    if not files:
        raise DeviceTypeError(f"no device-type files (*.toml) found in {directory}")
    types = sorted((parse_device_type(text, name) for name, text in files), key=lambda t: t.name)
    return build_table(types)


def build_table(types: list[DeviceType]) -> DeviceTypeTable:
    """Dense per-type arrays for the kernels; unused signal slots get NaN limits."""
    t, k = len(types), max([MAX_SIGNALS, *(len(dt.signals) for dt in types)])
    lo, hi = np.full((t, k), np.nan), np.full((t, k), np.nan)
    rmin, rmax = np.full((t, k), np.nan), np.full((t, k), np.nan)
    zfloor = np.full((t, k), np.nan)
    inv = np.zeros((t, MAX_INVARIANTS, 7))
    for i, dt in enumerate(types):
        for j, s in enumerate(dt.signals):
            lo[i, j], hi[i, j], rmin[i, j], rmax[i, j] = s.min, s.max, s.roc_min, s.roc_max
            zfloor[i, j] = (s.max - s.min) * (STATE_FLOOR if s.state else LEVEL_FLOOR)
        idx = dt.signal_index()
        for j, v in enumerate(dt.invariants):
            c = idx[v.c] if v.c else -1
            extra = v.tol if v.kind == "implies_zero" else v.min_denominator
            inv[i, j] = (INVARIANT_KINDS[v.kind], idx[v.a], idx[v.b], c, v.lo, v.hi, extra)
    return DeviceTypeTable(
        types=tuple(types),
        index={dt.name: i for i, dt in enumerate(types)},
        signal_index=tuple(dt.signal_index() for dt in types),
        firmware=tuple(frozenset(dt.firmware) for dt in types),
        n_signals=np.array([len(dt.signals) for dt in types], dtype=np.int64),
        nominal_hz=np.array([dt.report_hz for dt in types], dtype=np.float64),
        lo=lo, hi=hi, roc_min=rmin, roc_max=rmax, zfloor=zfloor, inv=inv,
    )
