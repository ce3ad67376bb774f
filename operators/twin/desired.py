"""Desired state next to reported state: operator `set` commands, convergence deadlines, silent reverts.

A command puts (device, signal) into PENDING with its set-point. Reports at or after the command's
event time then move it: within `tolerance` -> CONVERGED; still off target `converge_s` after the
command -> drift ("did not converge"); a verdict is emitted once the device has reported `grace_ms`
of event time past it without a late-arriving command explaining it (topics are not ordered
with each other in Kafka). A CONVERGED signal that reports beyond twice the tolerance
`revert_reports` times in a row without a new command -> drift ("silently reverted"); the factor 2 is
hysteresis, so a device settling at the edge of its tolerance does not flap. Judged in event time on the
device's authentic reports, so batch boundaries and topic interleaving do not change the verdict.
A signal that reaches its set-point moves its own learned baseline there: a commanded level is the
device's new normal, not a deviation (its type's peer baseline and the physical checks still apply).
Set-points outside the type's safe range are dangerous commands (`insider`, naming the user).
State lives in the shard's TwinStore arrays (desired, desired_ts, drift, drift_off, commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from twinguard.operators.batches import OutMsg, TelemetryBatch
from twinguard.operators.decode.activity import SET_ACTION, ActivityBatch
from twinguard.operators.detect.detectors import DETECTORS, run_detectors
from twinguard.operators.detect.policy import CLASS_INDEX, Decisions
from twinguard.operators.detect.rule_threats import RuleHit, rule_id, rule_outputs
from twinguard.operators.integrity.signatures import authentic
from twinguard.operators.settings import DetectionConfig
from twinguard.operators.twin import kernels as K
from twinguard.schemas.device_types import DeviceTypeError, DeviceTypeTable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
NONE, PENDING, CONVERGED, DRIFTED = 0, 1, 2, 3
NOT_CONVERGED, REVERTED = 0, 1
STAGE = "desired_state"
DRIFT, INSIDER = CLASS_INDEX["drift"], CLASS_INDEX["insider"]
# detectors a command does not explain: all but the learned-baseline ones
UNEXPLAINED = np.array([d.name not in ("baseline_deviation", "multivariate") for d in DETECTORS])


@dataclass(frozen=True)
class ControlTable:
    """Per device type: which signals are commandable and how convergence is judged ([control])."""

    tol: F64  # [T, K], NaN = not commandable
    safe_lo: F64
    safe_hi: F64
    converge_ms: I64  # [T]
    revert_n: I64

    @classmethod
    def from_types(cls, types: DeviceTypeTable) -> ControlTable:
        t = len(types)
        tol, lo, hi = (np.full((t, types.width), np.nan) for _ in range(3))
        conv, rev = np.zeros(t, np.int64), np.ones(t, np.int64)
        for i, dt in enumerate(types.types):
            c, idx = dt.control, dt.signal_index()
            conv[i] = int(float(c.get("converge_s", 30.0)) * 1000)
            rev[i] = max(int(c.get("revert_reports", 2)), 1)
            for name, spec in c.get("signals", {}).items():
                if name not in idx:
                    raise DeviceTypeError(f"{dt.name}: [control.signals.{name}] is not a signal "
                                          f"of the type (known: {', '.join(idx)})")
                k = idx[name]
                tol[i, k] = float(spec.get("tolerance", 0.0))
                lo[i, k] = float(spec.get("safe_min", dt.signals[k].min))
                hi[i, k] = float(spec.get("safe_max", dt.signals[k].max))
        return cls(tol, lo, hi, conv, rev)


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def track(slots: I64, ts: I64, signals: F64, trusted: npt.NDArray[np.bool_], istate: I64,
          tol: F64, converge_ms: I64, revert_n: I64, desired: F64, desired_ts: I64, state: I64,
          off: I64, base: F64, hits: I64) -> int:
    """Advance every commanded signal over the batch's reports (in place); write drift hits as rows
    (report row, signal, NOT_CONVERGED/REVERTED) into `hits` and return how many. On reaching its
    set-point a signal's own baseline mean (kernels' `base`) moves to the set-point."""
    n_hits = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        if not trusted[i]:
            continue
        t = istate[s, 0]
        for k in range(signals.shape[1]):
            st = state[s, k]
            v = signals[i, k]
            if st == NONE or np.isnan(v) or ts[i] < desired_ts[s, k]:
                continue
            near = abs(v - desired[s, k]) <= tol[t, k]
            if st == PENDING:
                if near:
                    state[s, k], off[s, k] = CONVERGED, 0
                    base[s, K.B_SIG0 + k, 0] = desired[s, k]
                elif ts[i] - desired_ts[s, k] >= converge_ms[t]:
                    state[s, k] = DRIFTED
                    hits[n_hits, 0], hits[n_hits, 1], hits[n_hits, 2] = i, k, NOT_CONVERGED
                    n_hits += 1
            elif st == CONVERGED:  # hysteresis: a revert goes beyond twice the tolerance
                far = abs(v - desired[s, k]) > 2.0 * tol[t, k]
                off[s, k] = off[s, k] + 1 if far else 0
                if off[s, k] >= revert_n[t]:
                    state[s, k] = DRIFTED
                    hits[n_hits, 0], hits[n_hits, 1], hits[n_hits, 2] = i, k, REVERTED
                    n_hits += 1
            elif near:  # DRIFTED and back on target: watch for the next revert
                state[s, k], off[s, k] = CONVERGED, 0
                base[s, K.B_SIG0 + k, 0] = desired[s, k]
    return n_hits


class DesiredTracker:
    """Applies a shard's commands to its twins and judges its reports against them."""

    def __init__(self, types: DeviceTypeTable, control: ControlTable, grace_ms: int = 0,
                 detection: DetectionConfig | None = None, horizon_ms: int = 60_000,
                 pending_ttl_s: float = 600.0, max_pending: int = 10_000) -> None:
        self.types, self.control, self.grace_ms = types, control, grace_ms
        self.detection = detection or DetectionConfig()
        self.horizon_ms = horizon_ms
        self.pending_ttl_s, self.max_pending = pending_ttl_s, max_pending

    # ---- commands (activity rows routed to this shard)

    def apply(self, engine: Any, acts: ActivityBatch) -> list[OutMsg]:
        """Fold commands into their twins; a device not seen yet keeps its commands pending."""
        out: list[OutMsg] = []
        st, now = engine.store, engine.ctx.now()
        for i in range(len(acts)):
            s = st.index.get(acts.device_ids[i])
            if s is None:
                st.unresolved.append(acts.take([i]))
                st.unresolved_at.append(now)
            else:
                out += self._apply_row(engine, s, acts, i)
        return out + self.expire(engine)

    def expire(self, engine: Any) -> list[OutMsg]:
        """Commands for devices without a twin wait `pending_ttl_s` (wall clock) for the device's
        first authentic report, at most `max_pending` of them: the rest become dead letters, oldest
        first, so commands under random device ids cannot pile up."""
        st = engine.store
        if not st.unresolved:
            return []
        now = engine.ctx.now()
        if len(st.unresolved_at) != len(st.unresolved):  # a store from before the wait was timed
            st.unresolved_at = [now] * len(st.unresolved)
        at, n = st.unresolved_at, len(st.unresolved)
        full = max(n - self.max_pending, 0)
        old = full
        while old < n and now - at[old] > self.pending_ttl_s:  # parked in time order
            old += 1
        if old == 0:
            return []
        now_ms = int(now * 1000)
        out = [acts.dead_letter(0, STAGE, self._gave_up(acts.device_ids[0], now - t, j < full),
                                now_ms)
               for j, (acts, t) in enumerate(zip(st.unresolved[:old], at[:old], strict=True))]
        st.unresolved, st.unresolved_at = st.unresolved[old:], at[old:]
        return out

    def _gave_up(self, device: str, waited_s: float, overflow: bool) -> str:
        if overflow:
            return (f"command for {device!r}, which has no twin: more than "
                    f"activity.max_pending_commands={self.max_pending} commands wait for devices "
                    "without one, the oldest are dropped")
        return (f"command for {device!r} waited {waited_s:.0f} s (activity.pending_command_ttl_s="
                f"{self.pending_ttl_s:g}) for the device's first authentic telemetry: no twin to "
                "hold its desired state")

    def _apply_row(self, engine: Any, s: int, acts: ActivityBatch, i: int) -> list[OutMsg]:
        a = engine.store.arrays
        t = int(a["istate"][s, K.I_TYPE])
        dt = self.types.types[t]
        ts, now_ms = acts.ts[i], int(engine.ctx.now() * 1000)
        settable = [sg.name for k, sg in enumerate(dt.signals) if not np.isnan(self.control.tol[t, k])]
        sets: list[tuple[int, float]] = []
        if acts.actions[i] == SET_ACTION:
            for name, v in acts.params[i].items():
                if name not in settable:
                    return [acts.dead_letter(i, STAGE, f"'set' names {name!r}, not a commandable "
                            f"set-point of device type {dt.name!r} (commandable: "
                            f"{', '.join(settable) or 'none'})", now_ms)]
                sets.append((self.types.signal_index[t][name], float(v)))
        a["commands"][s] += 1
        a["istate"][s, K.I_DIRTY] = 1
        out: list[OutMsg] = []
        for k, v in sets:
            if a["desired_ts"][s, k] < ts <= a["hit_ts"][s, k]:  # a late command explains the move
                a["hit_ts"][s, k] = -1
            if ts >= a["desired_ts"][s, k]:  # a late older command does not undo a newer one
                a["desired"][s, k], a["desired_ts"][s, k] = v, ts
                a["drift"][s, k], a["drift_off"][s, k] = PENDING, 0
                self._judge_late(a, s, t, k)
            lo, hi = self.control.safe_lo[t, k], self.control.safe_hi[t, k]
            if not lo <= v <= hi:
                name = dt.signals[k].name
                hit = RuleHit(acts.device_ids[i], dt.name, "insider", "unsafe_setpoint",
                              f"user {acts.users[i]!r} set {name}={v:g}, outside the safe range "
                              f"{lo:g}..{hi:g} of {dt.name}", ts, ts, {name: v}, acts.users[i])
                out += self._emit(engine, s, INSIDER, hit, now_ms)
        return out

    def _judge_late(self, a: dict[str, np.ndarray], s: int, t: int, k: int) -> None:
        """A command read after the device's reports that followed it: judge its latest report."""
        last_ts, last = int(a["istate"][s, K.I_LAST_TS]), float(a["last_sig"][s, k])
        since = int(a["desired_ts"][s, k])
        if last_ts < since or np.isnan(last):
            return
        if abs(last - a["desired"][s, k]) <= self.control.tol[t, k]:
            a["drift"][s, k] = CONVERGED
        elif last_ts - since >= self.control.converge_ms[t]:
            a["drift"][s, k] = DRIFTED
            a["hit_ts"][s, k], a["hit_kind"][s, k], a["hit_val"][s, k] = last_ts, NOT_CONVERGED, last

    # ---- windows (the engine's on_windows hook)

    def explain(self, store: Any, w: Any, d: Decisions) -> None:
        """A verdict of the model and the learned baselines alone on a window within `horizon_ms`
        (the long window: its features still hold the step) after a command to the device is
        explained by the command (both learned devices that change on their own, not on an
        operator's order): dropped. The other detectors (physics, integrity, traffic) still stand,
        and the drift check judges the command."""
        rows = np.flatnonzero(d.cls > 0)
        if not rows.size:
            return
        a, slots = store.arrays, w.meta[rows, 0]
        last_cmd = a["desired_ts"][slots].max(axis=1)
        hold = self.horizon_ms
        commanded = (last_cmd >= w.meta[rows, 1] - hold) & (last_cmd <= w.meta[rows, 2])
        if not commanded.any():
            return
        rows = rows[commanded]
        model_only = ~run_detectors(w.features[rows], self.detection)[:, UNEXPLAINED].any(axis=1)
        d.cls[rows[model_only]] = 0

    # ---- reports (the engine's on_batch hook)

    def __call__(self, engine: Any, batch: TelemetryBatch, slots: I64) -> list[OutMsg]:
        st = engine.store
        out = self._resolve(engine) if st.unresolved else []
        a = st.arrays
        if not len(batch) or not a["drift"][: st.size].any():
            return out
        c, st = self.control, engine.store
        hits = np.empty((batch.signals.size, 3), dtype=np.int64)
        # what the kernels believe: signed, or unsigned where signatures are not required
        trusted = authentic(batch.sig_state, engine.ctx.detection.require_signature)
        n = track(slots, batch.ts, batch.signals, trusted, a["istate"], c.tol, c.converge_ms,
                  c.revert_n, a["desired"], a["desired_ts"], a["drift"], a["drift_off"], a["base"],
                  hits)
        for i, k, kind in hits[:n].tolist():
            s = int(slots[i])
            a["hit_ts"][s, k], a["hit_kind"][s, k] = batch.ts[i], kind
            a["hit_val"][s, k] = batch.signals[i, k]
        return out + self._due(engine, a["istate"][: st.size, K.I_LAST_TS] - self.grace_ms)

    def _due(self, engine: Any, mark: I64) -> list[OutMsg]:
        """Emit the verdicts whose device has reported `grace_ms` past them (mark per slot)."""
        a = engine.store.arrays
        hit_ts = a["hit_ts"][: engine.store.size]
        due = np.argwhere((hit_ts >= 0) & (hit_ts <= mark[:, None]))
        now_ms = int(engine.ctx.now() * 1000)
        out: list[OutMsg] = []
        for s, k in due.tolist():
            hit = self._drift_hit(engine, s, k)
            a["hit_ts"][s, k] = -1
            out += self._emit(engine, s, DRIFT, hit, now_ms)
        return out

    def _drift_hit(self, engine: Any, s: int, k: int) -> RuleHit:
        a = engine.store.arrays
        t = int(a["istate"][s, K.I_TYPE])
        dt = self.types.types[t]
        name, want, got = dt.signals[k].name, float(a["desired"][s, k]), float(a["hit_val"][s, k])
        since, at = int(a["desired_ts"][s, k]), int(a["hit_ts"][s, k])
        kind = int(a["hit_kind"][s, k])
        if kind == NOT_CONVERGED:
            why = (f"{name} reports {got:g}, not the commanded {want:g}, "
                   f"{(at - since) / 1000:.1f} s after the command (deadline "
                   f"{self.control.converge_ms[t] / 1000:g} s)")
            rule = "not_converged"
        else:
            why = (f"{name} reached the commanded {want:g}, then silently moved to {got:g} "
                   f"({self.control.revert_n[t]} reports in a row) without a new command")
            rule = "silent_revert"
        return RuleHit(engine.store.device_ids[s], dt.name, "drift", rule, why, since, at,
                       {f"{name}_desired": want, f"{name}_reported": got})

    def _resolve(self, engine: Any) -> list[OutMsg]:
        """Commands that arrived before their device's first report, now that it has a twin."""
        st, out, keep, keep_at = engine.store, [], [], []
        at = st.unresolved_at if len(st.unresolved_at) == len(st.unresolved) else \
            [engine.ctx.now()] * len(st.unresolved)
        for acts, t in zip(st.unresolved, at, strict=True):
            s = st.index.get(acts.device_ids[0])
            if s is None:
                keep.append(acts)
                keep_at.append(t)
            else:
                out += self._apply_row(engine, s, acts, 0)
        st.unresolved, st.unresolved_at = keep, keep_at
        return out

    def flush(self, engine: Any) -> list[OutMsg]:
        """End of input: pending verdicts are final; commands for devices that never reported
        cannot be kept, say so."""
        now_ms = int(engine.ctx.now() * 1000)
        out = self._due(engine, np.full(engine.store.size, 2**62, dtype=np.int64))
        out += [acts.dead_letter(0, STAGE, f"command for {acts.device_ids[0]!r}, which never sent "
                                "telemetry: no twin to hold its desired state", now_ms)
               for acts in engine.store.unresolved]
        engine.store.unresolved, engine.store.unresolved_at = [], []
        return out

    def _emit(self, engine: Any, s: int, cls: int, hit: RuleHit, now_ms: int) -> list[OutMsg]:
        """Outputs for a hit unless the device alerted this class within the cooldown."""
        st, a = engine.store, engine.store.arrays
        if hit.end - a["alert_ts"][s, cls] < engine.ctx.detection.alert_cooldown_ms:
            return []
        a["alert_ts"][s, cls] = hit.end
        out = rule_outputs(hit, now_ms, engine.ctx.response.dry_run)
        a["threats_total"][s] += 1
        a["last_threat"][s] = (cls, hit.end)
        a["istate"][s, K.I_DIRTY] = 1
        st.last_threat_ids[s] = rule_id(hit)
        return out
