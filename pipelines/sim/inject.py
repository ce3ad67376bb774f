"""Attack effects during one simulation pass: alters attacked devices' regular reports and makes
the extra messages (floods, scans, login storms, replays, identity attacks) in send-time order."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twinguard.pipelines.sim import identity
from twinguard.pipelines.sim.attacks import NEEDS_HISTORY, WINDOW_THREATS, Attack, AttackPlan
from twinguard.pipelines.sim.devices import FleetDevices
from twinguard.pipelines.sim.events import KIND_EXTRA, KIND_REPLAY, Events
from twinguard.pipelines.sim.fdi import recipe, tamper_signal
from twinguard.pipelines.sim.physics import DECIMALS
from twinguard.schemas.device_types import DeviceTypeTable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def touches(at: Attack, ks: I64, t_lo: int, t_hi: int, iv_ms: float) -> bool:
    """Whether a block of steps (ks, report times t_lo..t_hi) holds anything of the attack."""
    if at.threat in ("replay", "tampering"):
        return bool(len(at.ks)) and int(at.ks[0]) <= int(ks[-1]) and int(at.ks[-1]) >= int(ks[0])
    margin = 4 * iv_ms if at.threat in NEEDS_HISTORY else 0.0  # floods need reports around them
    return at.a0 - margin <= t_hi and at.a1 + margin >= t_lo


class AttackInjector:
    """One pass's attack state: its own intensity generator and the reports floods interpolate."""

    def __init__(self, seed: int, plan: AttackPlan, devices: FleetDevices, types: DeviceTypeTable
                 ) -> None:
        self.arng = np.random.default_rng([seed, 3])  # per-message attack intensities
        self.devices, self.types = devices, types
        self.hist: dict[int, list[tuple[I64, F64]]] = {
            id(a): [] for a in plan.attacks if a.threat in NEEDS_HISTORY}
        self.extra_attacks = [a for a in plan.attacks if len(a.extra_ts)]

    # ---- regular reports of attacked devices

    def apply(self, t: int, iv_ms: float, attacks: list[tuple[Attack, int]], ks: I64, ts: I64,
              sig: F64, ev: Events) -> None:
        """Apply each (attack, column) of type t that this block of steps (ks, times ts) touches."""
        t_lo, t_hi = int(ts[0].min()), int(ts[-1].max())
        for at, j in attacks:
            if touches(at, ks, t_lo, t_hi, iv_ms):
                self._apply_attack(t, iv_ms, at, j, ks, ts, sig, ev)

    def _apply_attack(self, t: int, iv_ms: float, at: Attack, j: int, ks: I64, ts: I64, sig: F64,
                      ev: Events) -> None:
        """Mark or alter the attacked device's regular reports in this block (column j)."""
        col = ts[:, j]
        if at.threat in NEEDS_HISTORY and col[-1] >= at.a0 - 4 * iv_ms and (
                col[0] <= at.a1 + 4 * iv_ms):
            self.hist[id(at)].append((col.copy(), sig[:, j, :].copy()))
        if at.threat == "replay":
            hit = np.isin(ks, at.ks)
            slots = np.searchsorted(at.ks, ks[hit])
            ev.tag[hit, j] = at.slot0 + slots
            return
        if at.threat == "tampering":
            self._tamper(t, at, j, ks, sig, ev)
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
            dtype = self.types.types[t]
            fn = recipe(dtype, bool(at.params["generic"]))
            block = sig[rows, j, :]
            fn(block, dtype.signal_index(), at.params)
            sig[rows, j, :] = np.round(block, DECIMALS)
        elif at.threat == "firmware_tampering":
            ev.fwmod[rows, j] = True

    def _tamper(self, t: int, at: Attack, j: int, ks: I64, sig: F64, ev: Events) -> None:
        """Tampered reports: values nudged after signing (bad sig) or signature stripped."""
        hit = np.flatnonzero(np.isin(ks, at.ks))
        if not len(hit):
            return
        dtype = self.types.types[t]
        k = tamper_signal(dtype)
        s = dtype.signals[k]
        v = sig[hit, j, k]
        delta = np.abs(v) * at.params["frac"] * self.arng.uniform(0.5, 1.5, len(hit))
        # a tiny value gets a small absolute push up instead, so the change survives rounding
        new = np.where(delta >= 1e-3, v - delta, v + 0.002 * (s.max - s.min))
        new = np.where(new < s.min, v + delta, new)
        ev.tval[hit, j] = np.round(new, DECIMALS)
        ev.mode[hit, j] = at.modes[np.searchsorted(at.ks, ks[hit])]

    # ---- attack-only messages (floods, scans, login storms, replays)

    def messages(self, t0: int, t1: int) -> list[Events]:
        """Extra and replayed messages with send time in [t0, t1)."""
        out = []
        for at in self.extra_attacks:
            if at.extra_ts[0] >= t1 or at.extra_ts[-1] < t0:
                continue
            lo, hi = np.searchsorted(at.extra_ts, [t0, t1])
            if hi > lo:
                out.append(self._extra_events(at, lo, hi))
        return out

    def _extra_events(self, at: Attack, lo: int, hi: int) -> Events:
        """Messages lo..hi-1 of an attack's extra schedule as event rows."""
        devs, a = self.devices, self.arng
        ts, n, d = at.extra_ts[lo:hi], hi - lo, at.dev
        ev = Events.empty(n)
        ev.ts, ev.dev[:] = ts, d
        if at.threat == "replay":
            ev.kind[:], ev.tag = KIND_REPLAY, at.extra_aux[lo:hi]
            return ev
        ev.kind[:] = KIND_EXTRA
        ev.sig = self._interpolate(at, ts)
        ev.port[:] = devs.port[d]
        base_out, base_in = devs.base_out[d], devs.base_in[d]
        if at.threat in identity.IDENT_THREATS:
            identity.fill_extra(ev, at.threat, at.params, base_out, base_in, devs.port[d], a)
            return ev
        if at.threat == "dos":
            mult = at.params.get("mult", 1.0)  # exfil_flood (sim/variants.py) carries data out
            ev.bout = np.rint(mult * base_out * np.exp(0.12 * a.standard_normal(n))).astype(np.int64)
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

    def _interpolate(self, at: Attack, ts: I64) -> F64:
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
        dtype = self.types.types[int(self.devices.type_of[at.dev])]
        for k, s in enumerate(dtype.signals):
            if s.min == 0.0 and s.max == 1.0 and s.unit == "bool":
                # max(prev, next) keeps "no flow while off" true across a pump start
                v[:, k] = np.maximum(hv[i, k], hv[i + 1, k])
        out: F64 = np.round(v, DECIMALS)
        return out
