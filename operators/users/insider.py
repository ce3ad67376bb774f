"""Per-user operator behaviour learned from the activity topic (no labels) -> `insider` threats.

Keyed by user (a user's commands span devices and shards), one UserStore per user shard: a few numpy
arrays indexed by a dense user slot, so snapshots stay cheap. Learned per user, from the first command:
  - command rate: EWMA of the gap between commands (gaps capped at 10 min so off-shift pauses do not
    count); a burst = >= burst_min commands in burst_window_ms AND >= burst_ratio x the learned rate
    (alerted when it starts; a rate sustained for ~50 commands becomes the user's normal);
  - usual devices: the devices the user has commanded (up to MAX_DEVICES, least recently used
    replaced); trusted once learn_commands commands in a row added no new device (and from then
    on); then foreign_min distinct new devices within foreign_window_ms = a sweep (one or two new
    devices, e.g. covering a colleague, are not);
  - hour-of-day profile: a command in an hour that, with its neighbours, holds < off_hours_share of a
    history of >= hours_min_commands spanning >= hours_min_span_ms;
  - dangerous actions (configured list): always reported.
Commands are judged in event-time order (Reorder); the Python loop is per command, and commands are
rare next to telemetry (a few per operator per minute).
"""

from __future__ import annotations

import copy
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from bytewax.operators import StatefulBatchLogic

from twinguard.operators.batches import OutMsg
from twinguard.operators.decode.activity import ActivityBatch
from twinguard.operators.detect.rule_threats import RuleHit, rule_outputs
from twinguard.operators.settings import ActivityConfig

RECENT = 64        # command times kept per user for the burst window
MAX_DEVICES = 128  # usual devices kept per user
FOREIGN = 16       # recent foreign commands kept per user
GAP_CAP_MS = 600_000
GAP_PRIOR_MS = 60_000.0  # a new user's rate prior: one command a minute
GAP_ALPHA = 0.05
IDLE_S = 5.0  # an activity partition silent this long (wall clock) no longer holds commands back
TICK = timedelta(seconds=1)
RULES = ("rate_burst", "foreign_devices", "off_hours", "dangerous_action")


def _alloc(cap: int) -> dict[str, np.ndarray]:
    return {
        "recent": np.full((cap, RECENT), -(2**62), dtype=np.int64),
        "n": np.zeros(cap, dtype=np.int64),
        "first_ts": np.zeros(cap, dtype=np.int64),
        "last_ts": np.full(cap, -1, dtype=np.int64),
        "gap": np.full(cap, GAP_PRIOR_MS),
        "hours": np.zeros((cap, 24), dtype=np.int64),
        "devs": np.zeros((cap, MAX_DEVICES), dtype=np.int64),  # crc32 + 1; 0 = empty
        "devs_ts": np.zeros((cap, MAX_DEVICES), dtype=np.int64),
        "since_new": np.zeros(cap, dtype=np.int64),  # commands since a device joined the set
        "set_trusted": np.zeros(cap, dtype=np.int64),
        "foreign": np.zeros((cap, FOREIGN), dtype=np.int64),
        "foreign_ts": np.full((cap, FOREIGN), -(2**62), dtype=np.int64),
        "alert_ts": np.full((cap, len(RULES)), -(2**62), dtype=np.int64),
    }


@dataclass
class UserStore:
    """Behaviour state of every user in one user shard."""

    capacity: int = 16
    size: int = 0
    index: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arrays:
            self.arrays = _alloc(self.capacity)

    def slot(self, user: str) -> int:
        s = self.index.get(user)
        if s is None:
            if self.size == self.capacity:
                fresh = _alloc(2 * self.capacity)
                for k, v in self.arrays.items():
                    fresh[k][: self.size] = v[: self.size]
                self.arrays, self.capacity = fresh, 2 * self.capacity
            s = self.index[user] = self.size
            self.size += 1
        return s

    def snapshot(self) -> UserStore:
        snap = copy.copy(self)
        snap.capacity = max(self.size, 1)
        snap.arrays = {k: v[: snap.capacity].copy() for k, v in self.arrays.items()}
        snap.index = dict(self.index)
        return snap


@dataclass
class UserJudge:
    """Updates a user's profile with each command and says which rules it breaks."""

    cfg: ActivityConfig
    store: UserStore = field(default_factory=UserStore)

    def __post_init__(self) -> None:
        self.dangerous = self.cfg.dangerous()

    def judge(self, acts: ActivityBatch, dry_run: bool, now_ms: int) -> list[OutMsg]:
        out: list[OutMsg] = []
        for i in range(len(acts)):
            for hit in self.observe(acts.users[i], acts.device_ids[i], acts.actions[i], acts.ts[i]):
                out += rule_outputs(hit, now_ms, dry_run)
        return out

    def observe(self, user: str, device: str, action: str, ts: int) -> list[RuleHit]:
        """Learn from one command; the rule hits it triggers (after cooldown)."""
        st = self.store
        s = st.slot(user)
        a = st.arrays
        hits = [h for h in (self._burst(s, ts), self._foreign(s, device, ts), self._hours(s, ts),
                            self._dangerous(action, ts)) if h is not None]
        self._learn(s, device, ts)
        out = []
        for rule, why, start, evidence in hits:
            r = RULES.index(rule)
            if ts - a["alert_ts"][s, r] < self.cfg.alert_cooldown_ms:
                continue
            a["alert_ts"][s, r] = ts
            out.append(RuleHit(device, "", "insider", rule, f"user {user!r}: {why}", start, ts,
                               evidence, user))
        return out

    def _burst(self, s: int, ts: int) -> tuple[str, str, int, dict[str, float]] | None:
        a, c = self.store.arrays, self.cfg
        expected = c.burst_window_ms / max(float(a["gap"][s]), 1.0)
        need = max(c.burst_min, c.burst_ratio * expected)
        if int((np.abs(a["recent"][s] - ts) < c.burst_window_ms).sum()) + 1 < need:
            return None  # the usual case, cheaply: not even +-window holds enough
        count, start = _densest(a["recent"][s], np.zeros(RECENT, np.int64), ts, 0,
                                c.burst_window_ms, distinct=False)
        if count < need:
            return None
        return ("rate_burst", f"{count} commands in {c.burst_window_ms / 1000:g} s, "
                f"{count / max(expected, 1e-9):.0f}x the user's usual rate", start,
                {"commands_in_window": count, "expected_in_window": expected})

    def _foreign(self, s: int, device: str, ts: int) -> tuple[str, str, int, dict[str, float]] | None:
        a, c = self.store.arrays, self.cfg
        h = zlib.crc32(device.encode()) + 1
        if not a["set_trusted"][s] or (a["devs"][s] == h).any():
            return None
        distinct, start = _densest(a["foreign_ts"][s], a["foreign"][s], ts, h,
                                   c.foreign_window_ms, distinct=True)
        j = int(np.argmin(a["foreign_ts"][s]))
        a["foreign"][s, j], a["foreign_ts"][s, j] = h, ts
        if distinct < c.foreign_min:
            return None
        return ("foreign_devices", f"{distinct} devices outside the user's usual set of "
                f"{int((a['devs'][s] > 0).sum())} within {c.foreign_window_ms / 60000:g} min",
                start, {"foreign_devices": distinct})

    def _hours(self, s: int, ts: int) -> tuple[str, str, int, dict[str, float]] | None:
        a, c = self.store.arrays, self.cfg
        n = int(a["n"][s])
        if n < c.hours_min_commands or ts - a["first_ts"][s] < c.hours_min_span_ms:
            return None
        h = _hour(ts)
        near = int(a["hours"][s, [(h - 1) % 24, h, (h + 1) % 24]].sum())
        if near >= c.off_hours_share * n:
            return None
        return ("off_hours", f"command at {h:02d}h UTC, an hour (+-1 h) holding {near} of the "
                f"user's {n} commands", ts, {"hour_utc": h, "share_near_hour": near / n})

    def _dangerous(self, action: str, ts: int) -> tuple[str, str, int, dict[str, float]] | None:
        if action not in self.dangerous:
            return None
        return ("dangerous_action", f"dangerous action {action!r} (activity.dangerous_actions)",
                ts, {})

    def _learn(self, s: int, device: str, ts: int) -> None:
        a = self.store.arrays
        if a["n"][s] == 0:
            a["first_ts"][s] = ts
        elif ts > a["last_ts"][s]:  # a sustained new rate becomes normal (after ~50 commands)
            gap = min(ts - int(a["last_ts"][s]), GAP_CAP_MS)
            a["gap"][s] += GAP_ALPHA * (gap - a["gap"][s])
        a["n"][s] += 1
        a["last_ts"][s] = max(int(a["last_ts"][s]), ts)
        j = int(np.argmin(a["recent"][s]))
        a["recent"][s, j] = ts
        a["hours"][s, _hour(ts)] += 1
        h = zlib.crc32(device.encode()) + 1
        known = np.flatnonzero(a["devs"][s] == h)
        j = int(known[0]) if known.size else int(np.argmin(a["devs_ts"][s]))
        a["devs"][s, j], a["devs_ts"][s, j] = h, max(ts, 1)
        a["since_new"][s] = a["since_new"][s] + 1 if known.size else 0
        if a["since_new"][s] >= self.cfg.learn_commands:  # the set stopped growing: trust it
            a["set_trusted"][s] = 1


def _hour(ts: int) -> int:
    """UTC hour of day of epoch ms (epoch time has no leap seconds)."""
    return (ts // 3_600_000) % 24


def _densest(times: np.ndarray, keys: np.ndarray, ts: int, key: int, w: int, distinct: bool
             ) -> tuple[int, int]:
    """(events, first time) of the busiest w-long window holding the event (ts, key) and stored
    ones; looking both ways keeps the verdict independent of the order commands arrive in (a
    user's commands come from several Kafka partitions)."""
    near = np.abs(times - ts) < w
    t = np.append(times[near], ts)
    k = np.append(keys[near], key)
    best, first = 0, ts
    for start in np.unique(t[t <= ts]).tolist():
        inside = (t >= start) & (t < start + w)
        if start + w <= ts:
            continue
        n = np.unique(k[inside]).size if distinct else int(inside.sum())
        if n > best:
            best, first = n, start
    return best, first


Row = tuple[int, str, str, str, str | None]  # ts, user, device, action, src_ip


@dataclass
class Reorder:
    """Releases a user shard's commands in event-time order: a user's commands come from every
    activity partition (they are keyed by device), each partition in order, so a command is due
    once every partition that is still delivering has passed its time (idle ones do not hold up).
    Nothing is released during the first `idle_s` after a (re)start: every partition gets the
    chance to say where it is before the first verdicts."""

    idle_s: float = IDLE_S
    started: float = 0.0
    pending: list[Row] = field(default_factory=list)
    part_max: dict[int, int] = field(default_factory=dict)
    part_wall: dict[int, float] = field(default_factory=dict)

    def add(self, acts: ActivityBatch, wall: float) -> None:
        self.started = self.started or wall
        for i in range(len(acts)):
            p, ts = acts.partition[i], acts.ts[i]
            self.pending.append((ts, acts.users[i], acts.device_ids[i], acts.actions[i],
                                 acts.src_ips[i]))
            if ts > self.part_max.get(p, -1):
                self.part_max[p], self.part_wall[p] = ts, wall

    def due(self, wall: float, everything: bool = False) -> list[Row]:
        if not everything and (not self.started or wall - self.started < self.idle_s):
            return []
        live = [m for p, m in self.part_max.items() if wall - self.part_wall[p] < self.idle_s]
        mark = 2**62 if everything else (min(live) if live else max(self.part_max.values(),
                                                                     default=-1))
        self.pending.sort(key=_order)
        cut = next((j for j, r in enumerate(self.pending) if r[0] > mark), len(self.pending))
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def copy(self) -> Reorder:
        return Reorder(self.idle_s, 0.0, list(self.pending), dict(self.part_max),
                       dict(self.part_wall))


def _order(r: Row) -> tuple[int, str, str, str, str]:
    """Event-time order; a missing source address sorts as '' (None and str do not compare: two
    commands alike but for one having an address would otherwise stop the flow)."""
    return r[0], r[1], r[2], r[3], r[4] or ""


class UserLogic(StatefulBatchLogic[ActivityBatch, OutMsg, tuple[UserStore, Reorder]]):
    """Bytewax shim: one user shard's commands in (re-ordered by event time), insider threats out."""

    def __init__(self, cfg: ActivityConfig, dry_run: bool,
                 resume: tuple[UserStore, Reorder] | None) -> None:
        store, self.reorder = resume if resume is not None else (UserStore(), Reorder())
        self.reorder.part_wall = dict.fromkeys(self.reorder.part_wall, time.time())
        self.judge = UserJudge(cfg, store)
        self.dry_run = dry_run

    def on_batch(self, values: list[ActivityBatch]) -> tuple[list[OutMsg], bool]:
        wall = time.time()
        for v in values:
            self.reorder.add(v, wall)
        return self._judge(self.reorder.due(wall)), False

    def on_notify(self) -> tuple[list[OutMsg], bool]:
        return self._judge(self.reorder.due(time.time())), False

    def on_eof(self) -> tuple[list[OutMsg], bool]:
        return self._judge(self.reorder.due(time.time(), everything=True)), False

    def notify_at(self) -> datetime:
        return datetime.now(UTC) + TICK

    def _judge(self, rows: list[Row]) -> list[OutMsg]:
        now_ms = int(time.time() * 1000)
        out: list[OutMsg] = []
        for ts, user, device, action, _src_ip in rows:
            for hit in self.judge.observe(user, device, action, ts):
                out += rule_outputs(hit, now_ms, self.dry_run)
        return out

    def snapshot(self) -> tuple[UserStore, Reorder]:
        return self.judge.store.snapshot(), self.reorder.copy()
