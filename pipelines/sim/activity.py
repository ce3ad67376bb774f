"""Simulated operators on the activity topic, steering a FleetSimulator's devices, with labelled
insider and drift scenarios and benign look-alikes.

Operators own devices and work 8-hour shifts; a few days of history (logins, views, alarm acks during
their shifts) precede the live run, so per-user profiles have something to learn from. Live, on-duty
operators `set` their commandable devices (signals in the device types' [control]); the devices
follow: `before_step` moves the physics model's target (and holds it against the model's own
autonomous changes) when a command's time has come.

Scenarios (labels in pipelines/sim/labels.py format; insider labels carry the user):
  insider: burst (a script firing commands at 3-8/s), foreign (a sweep over 4-8 devices of other
           operators at 1.5-4/s), off_hours (an off-duty operator active now), dangerous (a dangerous
           action, or a set-point outside the type's safe range);
  drift:   ignore (the device never applies a command), revert (applies it, then silently returns
           to the previous set-point).
Benign look-alikes: an operator touching one colleague's device (covering), and quick rounds of 3
commands within 10 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.pipelines.sim.fleet import FleetSimulator, SimBatch
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.pipelines.sim.physics import MODELS, ROC_MARGIN
from twinguard.schemas.messages import Activity

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
SHIFT_H = 8
HISTORY_ACTIONS = ("login", "view", "view", "ack_alarm", "get_config")
DANGEROUS = ("firmware_update", "disable_safety", "factory_reset")
INSIDER_KINDS = ("burst", "foreign", "off_hours", "dangerous")
DRIFT_KINDS = ("ignore", "revert")
# signal -> (model attribute holding its target, uniform column driving the model's own changes of
# it or None, whether the attribute is the output itself and must ramp at the roc limit)
COMMANDABLE: dict[str, dict[str, tuple[str, int | None, bool]]] = {
    "thermostat": {"setpoint_c": ("sp_target", 0, False)},
    "pump_plc": {"valve_open_pct": ("valve_target", 1, False)},
    "infusion_pump": {"rate_ml_h": ("rate", None, True)},
}
NORMAL_VALUE = {"setpoint_c": (17.0, 24.0, 0.5), "valve_open_pct": (30.0, 95.0, 0.1),
                "rate_ml_h": (20.0, 300.0, 0.1)}  # low, high, grid
UNSAFE_VALUE = {"setpoint_c": (33.0, 35.0), "valve_open_pct": (1.0, 5.0), "rate_ml_h": (600.0, 900.0)}
Interleaved = tuple[str, list[bytes], list[bytes], I64]
DRIFT_STEP = {"setpoint_c": 3.0, "valve_open_pct": 30.0, "rate_ml_h": 60.0}


@dataclass(frozen=True)
class ActivitySimConfig:
    devices_per_user: int = 12
    history_days: float = 3.0
    set_every_s: float = 240.0     # mean gap between an on-duty operator's set commands
    view_every_s: float = 180.0    # ... and between their other actions (history: the sum of both)
    insider: int | None = None     # scenarios; None = one per 100 devices (at least one per kind)
    drift: int | None = None
    lookalikes: bool = True


@dataclass(frozen=True)
class _Command:
    ts: int  # ms since the fleet's start
    dev: int
    signal: str
    value: float
    mode: str  # follow / ignore / revert


class ActivitySimulator:
    """Users, their activity messages and the device steering for one FleetSimulator."""

    def __init__(self, fleet: FleetSimulator, cfg: ActivitySimConfig | None = None) -> None:
        self.fleet, self.cfg = fleet, cfg or ActivitySimConfig()
        self.rng = np.random.default_rng([fleet.cfg.seed, 7])
        self.rows: list[tuple[int, int, str, str, dict[str, float | str]]] = []  # ts, dev, user, ...
        self.commands: list[_Command] = []
        self.labels: list[AttackLabel] = []
        self._setup_users()
        self._history()
        self._scenarios()  # first: drift devices are reserved before the normal commands
        self._live()
        self.rows.sort(key=lambda r: (r[0], r[1]))
        fleet.control = self
        fleet.labels = sorted([*fleet.labels, *self.labels], key=lambda lb: (lb.start, lb.device_id))

    # ---- users

    def _setup_users(self) -> None:
        f, rng = self.fleet, self.rng
        n_dev = f.cfg.devices
        n = max(8, n_dev // self.cfg.devices_per_user)
        self.users = [f"op.{i:04d}" for i in range(n)]
        self.owner = rng.permutation(np.arange(n_dev) % n)  # device -> user
        hour = datetime.fromtimestamp(f.start_ms / 1000, UTC).hour
        # two thirds are on shift now (shift began 0..5 h ago), the rest start 9..14 h from now
        on = rng.random(n) < 2 / 3
        on[: min(n, 4)] = True
        self.on_duty = on
        self.shift_start = np.where(on, hour - rng.integers(0, 6, n), hour + rng.integers(9, 15, n)) % 24
        self.commandable = np.array([f.devices[d][1] in COMMANDABLE for d in range(n_dev)])
        self.reserved: set[int] = set()  # devices used by drift scenarios: no normal commands

    def _own(self, u: int, commandable: bool = False) -> I64:
        mask = self.owner == u
        if commandable:
            mask &= self.commandable
        out: I64 = np.flatnonzero(mask)
        return out

    def _emit(self, ts: int, dev: int, u: int, action: str,
              params: dict[str, float | str] | None = None) -> None:
        self.rows.append((ts, dev, self.users[u], action, params or {}))

    # ---- history: actions during each user's shifts before the run

    def _history(self) -> None:
        f, rng, c = self.fleet, self.rng, self.cfg
        day0 = f.start_ms - int(c.history_days * DAY_MS)
        day_start = day0 - day0 % DAY_MS
        for u in range(len(self.users)):
            own = self._own(u)
            if not own.size:
                continue
            for d in range(int(np.ceil(c.history_days)) + 1):
                s0 = day_start + d * DAY_MS + int(self.shift_start[u]) * HOUR_MS
                s0 += int(rng.integers(-30, 31)) * 60_000  # shifts start a little early or late
                per_hour = 3600 / c.set_every_s + 3600 / c.view_every_s
                k = rng.poisson(per_hour * SHIFT_H)
                for ts in np.sort(rng.integers(s0, s0 + SHIFT_H * HOUR_MS, k)).tolist():
                    if day0 <= ts < f.start_ms:
                        self._emit(ts - f.start_ms, int(rng.choice(own)), u,
                                   str(rng.choice(HISTORY_ACTIONS)))

    # ---- live: on-duty operators work their devices

    def _live(self) -> None:
        f, rng, c = self.fleet, self.rng, self.cfg
        for u in np.flatnonzero(self.on_duty).tolist():
            own, cmd = self._own(u), self._own(u, commandable=True)
            if own.size:
                for ts in self._poisson(c.view_every_s, 0, f.dur_ms):
                    self._emit(ts, int(rng.choice(own)), u, str(rng.choice(HISTORY_ACTIONS)))
            if cmd.size:
                for ts in self._poisson(c.set_every_s, 0, f.dur_ms):
                    d = int(rng.choice(cmd))
                    if d not in self.reserved:
                        self._set(ts, d, u, self._normal_value(d), "follow")

    def _poisson(self, mean_gap_s: float, a: int, b: int) -> list[int]:
        k = self.rng.poisson((b - a) / (mean_gap_s * 1000))
        out: list[int] = np.sort(self.rng.integers(a, max(b, a + 1), k)).tolist()
        return out

    def _signal(self, d: int) -> str:
        return next(iter(COMMANDABLE[self.fleet.devices[d][1]]))

    def _normal_value(self, d: int) -> float:
        lo, hi, grid = NORMAL_VALUE[self._signal(d)]
        return round(round(float(self.rng.uniform(lo, hi)) / grid) * grid, 6)

    def _set(self, ts: int, d: int, u: int, value: float, mode: str) -> None:
        sig = self._signal(d)
        self.commands.append(_Command(ts, d, sig, value, mode))
        if mode != "revert":  # a revert is the device's doing, not a message
            self._emit(ts, d, u, "set", {sig: value})

    # ---- scenarios

    def _scenarios(self) -> None:
        f, c = self.fleet, self.cfg
        per = max(1, f.cfg.devices // 100)
        n_ins = c.insider if c.insider is not None else max(len(INSIDER_KINDS), per)
        n_drift = c.drift if c.drift is not None else max(len(DRIFT_KINDS) * 2, per)
        on = [u for u in np.flatnonzero(self.on_duty).tolist() if self._own(u).size]
        off = [u for u in np.flatnonzero(~self.on_duty).tolist() if self._own(u).size]
        self.rng.shuffle(on)
        self.rng.shuffle(off)
        used: set[int] = set()
        for i in range(n_drift):
            self._drift(DRIFT_KINDS[i % len(DRIFT_KINDS)], on)
        for i in range(n_ins):
            kind = INSIDER_KINDS[i % len(INSIDER_KINDS)]
            pool = off if kind == "off_hours" else on
            free = [u for u in pool if u not in used]
            if free:
                used.add(free[0])
                self._insider(kind, free[0])
        if c.lookalikes:
            self._lookalikes([u for u in on if u not in used])

    def _window(self, need_ms: int) -> int | None:
        lo, hi = 20_000, self.fleet.dur_ms - need_ms
        return int(self.rng.integers(lo, hi)) if hi > lo else None

    def _insider(self, kind: str, u: int) -> None:
        f, rng = self.fleet, self.rng
        t0 = self._window(15_000)
        own = self._own(u)
        if t0 is None or not own.size:
            return
        devs: list[int] = []
        if kind == "burst":
            n, rate = int(rng.integers(8, 26)), float(rng.uniform(3, 8))
            times = t0 + np.cumsum(rng.exponential(1000 / rate, n)).astype(np.int64)
            for ts in times.tolist():
                devs.append(int(rng.choice(own)))
                self._emit(ts, devs[-1], u, "get_config")
        elif kind == "foreign":
            others = np.flatnonzero(self.owner != u)
            pick = rng.choice(others, size=min(int(rng.integers(4, 9)), others.size), replace=False)
            gaps = rng.exponential(1000 / rng.uniform(1.5, 4), pick.size).astype(np.int64)
            times = t0 + np.cumsum(gaps)
            for ts, d in zip(times.tolist(), pick.tolist(), strict=True):
                devs.append(int(d))
                self._emit(ts, devs[-1], u, "get_config")
        elif kind == "off_hours":
            times = t0 + np.cumsum(rng.integers(2_000, 10_001, int(rng.integers(2, 6))))
            for ts in times.tolist():
                devs.append(int(rng.choice(own)))
                self._emit(ts, devs[-1], u, "view")
        else:
            cmd = [d for d in self._own(u, commandable=True).tolist() if d not in self.reserved]
            times = np.array([t0])
            if cmd and rng.random() < 0.5:
                d = int(rng.choice(cmd))
                lo, hi = UNSAFE_VALUE[self._signal(d)]
                devs.append(d)
                self._set(t0, d, u, round(float(rng.uniform(lo, hi)), 1), "follow")
            else:
                devs.append(int(rng.choice(own)))
                self._emit(t0, devs[-1], u, str(rng.choice(DANGEROUS)))
        self.labels.append(AttackLabel(f.devices[devs[0]][0], "insider", f.start_ms + int(times[0]),
                                       f.start_ms + int(times[-1]), user=self.users[u]))

    def _drift(self, kind: str, on: list[int]) -> None:
        """Two commands from the owner; the device ignores the second or later reverts to the first."""
        f, rng = self.fleet, self.rng
        types = ("thermostat", "infusion_pump") if kind == "revert" else tuple(COMMANDABLE)
        cands = [d for d in np.flatnonzero(self.commandable).tolist()
                 if d not in self.reserved and f.devices[d][1] in types and int(self.owner[d]) in on]
        if not cands:
            return
        d = int(rng.choice(cands))
        u, sig = int(self.owner[d]), self._signal(d)
        conv = int(float(f.types.types[f.types.index[f.devices[d][1]]].control.get(
            "converge_s", 30.0)) * 1000)
        need = conv + 15_000 if kind == "ignore" else 30_000
        b = self._window(need)
        if b is None:
            return
        self.reserved.add(d)
        x = self._normal_value(d)
        lo, hi, _ = NORMAL_VALUE[sig]
        y = x + DRIFT_STEP[sig] if x + DRIFT_STEP[sig] <= hi else x - DRIFT_STEP[sig]
        self._set(int(rng.integers(1_000, 10_000)), d, u, x, "follow")
        if kind == "ignore":
            self._set(b, d, u, y, "ignore")
            due = b + conv
        else:
            self._set(b, d, u, y, "follow")
            due = b + int(rng.integers(5_000, 15_001))
            self._set(due, d, u, x, "revert")
        _ks, ts, kept = f.clock.steps_between(d, due, f.dur_ms - 1)
        if kept.any():
            self.labels.append(AttackLabel(f.devices[d][0], "drift", f.start_ms + int(ts[kept][0]),
                                           f.start_ms + f.dur_ms - 1))

    def _lookalikes(self, users: list[int]) -> None:
        """Benign: one command on a colleague's device; a quick round of 3 commands."""
        rng = self.rng
        for u in users[: max(2, len(users) // 4)]:
            t0 = self._window(15_000)
            if t0 is None:
                return
            others = np.flatnonzero(self.owner != u)
            self._emit(t0, int(rng.choice(others)), u, "view")
            own = self._own(u)
            t1 = self._window(15_000) or t0
            for ts in (t1 + np.sort(rng.integers(0, 9_000, 3))).tolist():
                self._emit(ts, int(rng.choice(own)), u, "view")

    # ---- output

    def messages(self) -> list[tuple[int, bytes, bytes]]:
        """(absolute ts ms, key, value) of every activity message, in time order."""
        f, enc = self.fleet, msgspec.json.Encoder()
        out = []
        for ts, d, user, action, params in self.rows:
            dev = f.devices[d][0]
            a = Activity(dev, f.start_ms + ts, user, action, params, f"10.200.{d % 250}.{d // 250 % 250}")
            out.append((f.start_ms + ts, dev.encode(), enc.encode(a)))
        return out

    def interleave(self, batches: Iterator[SimBatch]) -> Iterator[Interleaved]:
        """("activity" | "telemetry", keys, values, send times) chunks in event-time order."""
        msgs, i = self.messages(), 0

        def upto(j: int) -> Interleaved:
            part = msgs[i:j]
            return ("activity", [m[1] for m in part], [m[2] for m in part],
                    np.array([m[0] for m in part], dtype=np.int64))
        for b in batches:
            end = int(b.ts_ms[-1]) if len(b) else 0
            j = i
            while j < len(msgs) and msgs[j][0] <= end:
                j += 1
            if j > i:
                yield upto(j)
                i = j
            yield "telemetry", b.keys, b.values, b.ts_ms
        if i < len(msgs):
            yield upto(len(msgs))

    # ---- device steering (called by the fleet simulator)

    def runner(self) -> _Steering:
        return _Steering(self)


class _Steering:
    """One simulation pass: applies due commands to the physics models before each report step."""

    def __init__(self, plan: ActivitySimulator) -> None:
        f = plan.fleet
        self.pending: dict[int, list[_Command]] = {}
        for c in sorted(plan.commands, key=lambda c: c.ts):
            self.pending.setdefault(int(f.type_of[c.dev]), []).append(c)
        self.names = [t.name for t in f.types.types]
        self.types = f.types
        self.col: dict[int, dict[int, int]] = {}
        self.held: dict[int, dict[int, float]] = {}  # type -> column -> target

    def before_step(self, t: int, devs: I64, model: Any, ts: I64, dt: F64, u: F64) -> None:
        spec = COMMANDABLE.get(self.names[t])
        if spec is None or type(model) is not MODELS.get(self.names[t]):
            return
        col = self.col.setdefault(t, {d: j for j, d in enumerate(devs.tolist())})
        held = self.held.setdefault(t, {})
        queue = self.pending.get(t, [])
        while queue and queue[0].ts <= int(ts.max()):
            due = [c for c in queue if c.ts <= ts[col[c.dev]]]
            if not due:
                break
            for c in due:
                queue.remove(c)
                j = col[c.dev]
                if c.mode == "ignore":
                    held.setdefault(j, float(getattr(model, spec[c.signal][0])[j]))
                else:
                    held[j] = c.value
        if not held:
            return
        sig = next(iter(spec))
        attr, ucol, ramp = spec[sig]
        cols = np.fromiter(held, np.int64, len(held))
        target = np.fromiter(held.values(), np.float64, len(held))
        if ucol is not None:
            u[cols, ucol] = 1.0  # no autonomous change of a commanded target
        if ramp:
            k = self.types.signal_index[t][sig]
            cur = getattr(model, attr)[cols]
            down = ROC_MARGIN * float(self.types.roc_min[t, k]) * dt[cols]
            up = ROC_MARGIN * float(self.types.roc_max[t, k]) * dt[cols]
            target = cur + np.minimum(np.maximum(target - cur, down), up)
        getattr(model, attr)[cols] = target
