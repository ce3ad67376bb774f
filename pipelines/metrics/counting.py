"""Where the dataflow counts: per input batch, per output batch, per stateful activation.

Every call here runs once per batch (hundreds to thousands of messages), never per input message:
a few dictionary look-ups and a lock per batch. prometheus_client's metrics are process-wide and
thread-safe, so the Bytewax workers (threads) of one process add into the same series; each Kafka
partition belongs to one worker, so its lag gauge has one writer. Output tallies decode only the
few fields they need, and only of threats, actions and dead letters (twin states are just counted).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, Sink, StatelessSinkPartition

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.pipelines.metrics import instruments as m
from twinguard.pipelines.metrics.reasons import reason_class, stage_label

V = TypeVar("V")
W = TypeVar("W")
S = TypeVar("S")


class _ThreatHead(msgspec.Struct):
    threat: str
    severity: str
    window_start: int


class _ActionHead(msgspec.Struct):
    action: str
    tier: str
    dry_run: bool


class _DeadHead(msgspec.Struct):
    stage: str
    reason: str


_threat = msgspec.json.Decoder(_ThreatHead)
_action = msgspec.json.Decoder(_ActionHead)
_dead = msgspec.json.Decoder(_DeadHead)


def count_input(raw: RawBatch) -> None:
    """One input batch taken from `raw.topic`."""
    m.MESSAGES_IN.labels(raw.topic).inc(len(raw))


def record_lag(topic: str, partition: int, lag: int) -> None:
    """A source partition's distance to its high watermark (the Kafka source calls this)."""
    m.CONSUMER_LAG.labels(topic, str(partition)).set(lag)


def timed(step: str, fn: Callable[[V], W]) -> Callable[[V], W]:
    """`fn` with its wall time per call observed as one batch of `step`."""
    hist = m.BATCH_SECONDS.labels(step)

    def run(item: V) -> W:
        t0 = time.perf_counter()
        try:
            return fn(item)
        finally:
            hist.observe(time.perf_counter() - t0)
    return run


def tally_outputs(items: list[OutMsg], now_s: float) -> None:
    """Count one written output batch: per role, and threats/actions/dead letters by class."""
    roles = Counter(msg.role for msg in items)
    for role, n in roles.items():
        m.MESSAGES_OUT.labels(role).inc(n)
    if roles.keys() <= {"twins"}:
        return
    threats: Counter[tuple[str, str]] = Counter()
    actions: Counter[tuple[str, str, str]] = Counter()
    dead: Counter[tuple[str, str]] = Counter()
    for msg in items:
        try:
            if msg.role == "threats":
                t = _threat.decode(msg.value)
                threats[t.threat, t.severity] += 1
                m.DETECTION_LATENCY.observe(max(0.0, now_s - t.window_start / 1000))
            elif msg.role == "actions":
                a = _action.decode(msg.value)
                actions[a.action, a.tier, "dry_run" if a.dry_run else "live"] += 1
            elif msg.role == "deadletter":
                d = _dead.decode(msg.value)
                dead[stage_label(d.stage), reason_class(d.reason)] += 1
        except msgspec.DecodeError:  # our own encoder wrote it: a bug, but never lose the batch
            m.MESSAGES_OUT.labels("undecodable").inc()
    for labels, n in threats.items():
        m.THREATS.labels(*labels).inc(n)
    for alabels, n in actions.items():
        m.ACTIONS.labels(*alabels).inc(n)
    for dlabels, n in dead.items():
        m.DEAD_LETTERS.labels(*dlabels).inc(n)


class _CountingPartition(StatelessSinkPartition[OutMsg]):
    def __init__(self, inner: StatelessSinkPartition[OutMsg]) -> None:
        self.inner = inner

    def write_batch(self, items: list[OutMsg]) -> None:
        self.inner.write_batch(items)  # counted once written: a failed write raises first
        tally_outputs(items, time.time())

    def close(self) -> None:
        self.inner.close()


class CountingSink(DynamicSink[OutMsg]):
    """Any dynamic sink of OutMsg, with each written batch tallied into the output metrics."""

    def __init__(self, inner: DynamicSink[OutMsg]) -> None:
        self.inner = inner

    def build(self, step_id: str, worker_index: int, worker_count: int
              ) -> _CountingPartition:
        return _CountingPartition(self.inner.build(step_id, worker_index, worker_count))


def counting_sink(sink: Sink[OutMsg]) -> Sink[OutMsg]:
    """`sink` counted when it is a dynamic sink (all of ours are); others pass unchanged."""
    return CountingSink(sink) if isinstance(sink, DynamicSink) else sink


class TimedLogic(StatefulBatchLogic[V, W, S], Generic[V, W, S]):
    """A stateful step's logic with each activation's wall time observed as one batch."""

    def __init__(self, step: str, inner: StatefulBatchLogic[V, W, S]) -> None:
        self.inner = inner
        self.hist = m.BATCH_SECONDS.labels(step)

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        t0 = time.perf_counter()
        try:
            return self.inner.on_batch(values)
        finally:
            self.hist.observe(time.perf_counter() - t0)

    def on_notify(self) -> tuple[Iterable[W], bool]:
        return self.inner.on_notify()

    def on_eof(self) -> tuple[Iterable[W], bool]:
        return self.inner.on_eof()

    def notify_at(self) -> datetime | None:
        return self.inner.notify_at()

    def snapshot(self) -> S:
        return self.inner.snapshot()


class TwinCensus:
    """The state shards alive in this process; the twins gauge sums their devices when scraped."""

    def __init__(self) -> None:
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, logic: Any) -> None:
        """`logic` has `engine.store.index` (device id -> slot): a ShardLogic."""
        with self._lock:
            self._live.add(logic)

    def count(self) -> int:
        with self._lock:
            live = list(self._live)
        return sum(len(lg.engine.store.index) for lg in live)


CENSUS = TwinCensus()
m.TWINS_TRACKED.set_function(CENSUS.count)
