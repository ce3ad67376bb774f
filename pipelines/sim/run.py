"""One pass over a planned fleet: advances each type's physics slice by slice of simulated time,
adds network counters and the planned attacks, and hands time-ordered rows to the encoder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.sim.attacks import Attack, AttackPlan
from twinguard.pipelines.sim.clock import ReportClock
from twinguard.pipelines.sim.devices import FleetDevices
from twinguard.pipelines.sim.encode import Encoder, gc_paused
from twinguard.pipelines.sim.events import KIND_REGULAR, Events
from twinguard.pipelines.sim.identity import Lookalikes, apply_bursts
from twinguard.pipelines.sim.inject import AttackInjector
from twinguard.pipelines.sim.physics import DECIMALS, Model, model_for
from twinguard.schemas.device_types import MAX_SIGNALS, DeviceTypeTable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

AUTH_FAIL_P = 0.002     # a single benign auth failure (mistyped password, clock skew)
RECONNECT_P = 0.01      # a message that also saw a reconnect (2 connections)


@dataclass(frozen=True)
class FleetPlan:
    """Everything decided before the first pass; each pass replays it from scratch."""

    seed: int
    start_ms: int
    slice_ms: int
    sign: bool
    types: DeviceTypeTable
    keyring: KeyRing
    devices: FleetDevices
    clock: ReportClock
    attacks: AttackPlan
    lookalikes: Lookalikes


@dataclass
class _TypeRun:
    """Per-type physics state during one pass over the simulation."""

    t: int
    dev: I64
    iv_ms: float
    model: Model
    rng: np.random.Generator
    prev_ts: I64
    attacks: list[tuple[Attack, int]]  # (attack, column of its device)
    k_next: int = 0


class FleetPass:
    """One pass of `FleetSimulator.batches()`: all mutable state lives here, so passes repeat."""

    def __init__(self, plan: FleetPlan, control: Any = None) -> None:
        self.plan = plan
        seed, clock = plan.seed, plan.clock
        self.trs: list[_TypeRun] = []
        by_dev = {a.dev: a for a in plan.attacks.attacks}
        for t, dt in enumerate(plan.types.types):
            dev = np.flatnonzero(plan.devices.type_of == t).astype(np.int64)
            if not len(dev):
                continue
            iv = float(clock.iv_ms[dev[0]])
            rng = np.random.default_rng([seed, 2, t])
            model = model_for(dt, len(dev), rng)
            prev = clock.report_ts(dev, np.zeros(len(dev), np.int64)) - int(round(iv))
            atts = [(by_dev[int(d)], j) for j, d in enumerate(dev.tolist()) if int(d) in by_dev]
            self.trs.append(_TypeRun(t, dev, iv, model, rng, prev, atts))
        self.pending = Events.empty(0)
        self.inject = AttackInjector(seed, plan.attacks, plan.devices, plan.types)
        self.encoder = Encoder(plan.devices, plan.types, plan.attacks, plan.lookalikes,
                               plan.keyring, plan.sign, plan.start_ms)
        self.control = control.runner() if control is not None else None

    def slices(self) -> Iterator[tuple[list[bytes], list[bytes], I64]]:
        """Encoded messages slice by slice of simulated time."""
        dur_ms, t0 = self.plan.clock.dur_ms, 0
        while t0 < dur_ms:
            t1 = min(t0 + self.plan.slice_ms, dur_ms)
            parts = [self.pending] + [self._advance(tr, t1) for tr in self.trs]
            allev = Events.concat(parts)
            due = allev.ts < t1
            self.pending = allev.take(~due)
            ev = Events.concat([allev.take(due), *self.inject.messages(t0, t1)])
            ev = ev.take(np.lexsort((ev.tag, ev.kind, ev.dev, ev.ts)))
            with gc_paused():
                out = self.encoder.encode(ev)
            yield out
            t0 = t1

    def _advance(self, tr: _TypeRun, t1: int) -> Events:
        """Physics for all steps needed to cover t1 plus two intervals of look-ahead."""
        clock = self.plan.clock
        k_stop = int(np.ceil((t1 + 2) / tr.iv_ms)) + 2
        if k_stop <= tr.k_next:
            return Events.empty(0)
        ks = np.arange(tr.k_next, k_stop, dtype=np.int64)
        n_s, n = len(ks), len(tr.dev)
        ts = clock.report_ts(tr.dev[None, :], ks[:, None])
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
        self.inject.apply(tr.t, tr.iv_ms, tr.attacks, ks, ts, sig, ev)
        tr.k_next, tr.prev_ts = k_stop, ts[-1]
        flat = Events(*(a.reshape(n_s * n, *a.shape[2:]) for a in (getattr(ev, f.name)
                                                                    for f in fields(ev))))
        return flat.take(flat.ts < clock.dur_ms)

    def _regular_columns(self, tr: _TypeRun, ks: I64, ts: I64, sig: F64, scale: F64) -> Events:
        """Healthy network/auth counters for the [steps, devices] grid (arrays kept 2-D here)."""
        devs, rng = self.plan.devices, tr.rng
        shape = ts.shape
        zn = rng.standard_normal((2, *shape))
        un = rng.random((3, *shape))
        bout = np.maximum(np.rint(devs.base_out[tr.dev] * scale * np.exp(0.12 * zn[0])), 1)
        bin_ = np.maximum(np.rint(devs.base_in[tr.dev] * np.exp(0.15 * zn[1])), 1)
        bout, bin_ = bout.astype(np.int64), bin_.astype(np.int64)
        apply_bursts(self.plan.lookalikes, tr.dev, ts, bout, bin_)
        fail = (un[0] < AUTH_FAIL_P).astype(np.int64)
        succ = np.maximum(fail, (un[1] < 0.01).astype(np.int64))  # a failure is followed by a retry
        ports = np.array([devs.port[d] for d in tr.dev.tolist()], np.int64)
        ev = Events(
            ts=ts, dev=np.broadcast_to(tr.dev, shape).copy(),
            kind=np.full(shape, KIND_REGULAR, np.int64), tag=np.full(shape, -1, np.int64),
            sig=sig, bin=bin_, bout=bout, pin=1 + bin_ // 1200,
            pout=1 + bout // 1200 + (un[2] < 0.3), conn=1 + (un[2] > 1.0 - RECONNECT_P),
            port=np.broadcast_to(ports, shape).copy(), alt=np.zeros(shape, bool), fail=fail,
            succ=succ, mode=np.zeros(shape, np.int64), tval=np.zeros(shape),
            fwmod=np.zeros(shape, bool), drop=self.plan.clock.dropped(tr.dev[None, :], ks[:, None]))
        ev.pout = ev.pout.astype(np.int64)
        ev.conn = ev.conn.astype(np.int64)
        return ev
