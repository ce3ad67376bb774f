"""Typed threat records from the threats topic: filtered, de-duplicated by id, optionally followed.

The one reader behind `twinguard threats`, the dashboard and the forensic bundle. Output is
at-least-once (a restarted dataflow re-emits what it wrote since its last snapshot, with the same
deterministic ids), so every consumer de-duplicates by `ThreatEvent.id`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from twinguard.operators.io.kafka import KafkaFatalError, quiet_settings
from twinguard.pipelines.config import Config
from twinguard.schemas.features import SEVERITIES
from twinguard.schemas.messages import ThreatEvent

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(ThreatEvent)
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# message timestamps are the sink's produce time, a little after `detected_at`: seek this much earlier
SEEK_SLACK_MS = 10 * 60 * 1000
DEFAULT_MEMORY = 200_000  # ids remembered for de-duplication (~20 MB); re-emits are recent


@dataclass(frozen=True)
class ThreatFilter:
    """Which threats to keep: at least `min_severity`, one class, one device, detected since."""

    min_severity: str | None = None
    threat: str | None = None
    device_id: str | None = None
    since_ms: int | None = None

    def __post_init__(self) -> None:
        if self.min_severity is not None and self.min_severity not in SEVERITY_RANK:
            msg = f"severity {self.min_severity!r} is not one of {', '.join(SEVERITIES)}"
            raise ValueError(msg)

    def matches(self, ev: ThreatEvent) -> bool:
        return ((self.min_severity is None
                 or SEVERITY_RANK.get(ev.severity, -1) >= SEVERITY_RANK[self.min_severity])
                and (self.threat is None or ev.threat == self.threat)
                and (self.device_id is None or ev.device_id == self.device_id)
                and (self.since_ms is None or ev.detected_at >= self.since_ms))


class SeenIds:
    """The last `capacity` ids seen: bounded memory for a reader that follows for months."""

    def __init__(self, capacity: int = DEFAULT_MEMORY) -> None:
        self.capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def first_time(self, tid: str) -> bool:
        """True the first time `tid` is offered (and remembers it), False for a repeat."""
        if tid in self._ids:
            return False
        self._ids.add(tid)
        self._order.append(tid)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
        return True


@dataclass
class ReadStats:
    """What the reader saw besides the threats it yielded: nothing is dropped silently."""

    records: int = 0
    duplicates: int = 0
    unreadable: int = 0
    filtered_out: int = 0
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next offset


class ThreatReader:
    """Iterate typed threats: what the topic holds now, or (`follow`) also what arrives later until
    `stop` is set. Partitions are assigned directly (no group, no commits): many readers, no
    rebalancing, and no effect on the dataflow's committed progress."""

    def __init__(self, settings: dict[str, Any], topic: str, *, match: ThreatFilter | None = None,
                 follow: bool = False, stop: threading.Event | None = None,
                 poll_s: float = 0.2, memory: int = DEFAULT_MEMORY) -> None:
        self.settings, self.topic, self.follow = settings, topic, follow
        self.match = match or ThreatFilter()
        self.stop = stop or threading.Event()
        self.poll_s = poll_s
        self.seen = SeenIds(memory)
        self.stats = ReadStats()

    def __iter__(self) -> Iterator[ThreatEvent]:
        c = Consumer({**self.settings, **quiet_settings("threats"),
                      "group.id": f"twinguard-threats-{uuid.uuid4().hex[:8]}",
                      "enable.auto.commit": False, "enable.partition.eof": False,
                      "auto.offset.reset": "earliest"})
        try:
            ends = self._start(c)
            while not self.stop.is_set():
                if not self.follow and all(self.stats.positions.get(p, 0) >= e
                                           for p, e in ends.items()):
                    return
                for m in c.consume(1000, self.poll_s):
                    ev = self._accept(m, ends)
                    if ev is not None:
                        yield ev
        finally:
            c.close()

    def _start(self, c: Consumer) -> dict[int, int]:
        """Assign every partition from its start (or `since`); the high watermarks now."""
        try:
            meta = c.list_topics(self.topic, timeout=30).topics.get(self.topic)
        except KafkaException as e:
            msg = (f"cannot read {self.topic} from {self.settings.get('bootstrap.servers')}: "
                   f"{e.args[0].str() if e.args else e} (is Kafka up? check --brokers)")
            raise KafkaFatalError(msg) from None  # the one line that says what to fix
        if meta is None or meta.error is not None:
            msg = (f"topic {self.topic!r} not found on the brokers (create the topics with "
                   "`twinguard topics create`, or check [topics] threats in the config)")
            raise KafkaFatalError(msg)
        parts = sorted(meta.partitions)
        ends = {} if self.follow and self.match.since_ms is None else self._ends(c, parts)
        starts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts]
        if self.match.since_ms is not None:
            at = max(self.match.since_ms - SEEK_SLACK_MS, 0)
            found = c.offsets_for_times([TopicPartition(self.topic, p, at) for p in parts],
                                        timeout=30)
            starts = [TopicPartition(self.topic, tp.partition,
                                     tp.offset if tp.offset >= 0 else ends.get(tp.partition, OFFSET_END))
                      for tp in found]
        for tp in starts:
            self.stats.positions[tp.partition] = max(tp.offset, 0)
        c.assign(starts)
        return ends

    def _ends(self, c: Consumer, parts: list[int], attempts: int = 10) -> dict[int, int]:
        """High watermarks, retried briefly: a topic created a moment ago has no leader yet."""
        for attempt in range(attempts):
            try:
                return {p: c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)[1]
                        for p in parts}
            except KafkaException:
                if attempt == attempts - 1:
                    raise
                self.stop.wait(0.5)
        return {}

    def _accept(self, m: Any, ends: dict[int, int]) -> ThreatEvent | None:
        """The message's threat if it is new, readable and wanted; counts it either way."""
        if m.error() is not None:
            if m.error().fatal():
                raise KafkaFatalError(f"reading {self.topic}: {m.error().str()}")
            return None
        part, off = m.partition(), m.offset()
        if not self.follow and off >= ends.get(part, 0):
            return None  # arrived after we started: a bounded read stops at the start's end
        self.stats.positions[part] = off + 1
        self.stats.records += 1
        try:
            ev = _decoder.decode(m.value() or b"")
        except msgspec.DecodeError as e:
            self.stats.unreadable += 1
            log.warning("%s partition %d offset %d: unreadable threat record skipped (%s)",
                        self.topic, part, off, e)
            return None
        if not self.match.matches(ev):
            self.stats.filtered_out += 1
            return None
        if not self.seen.first_time(ev.id):
            self.stats.duplicates += 1
            return None
        return ev


def threats(cfg: Config, *, match: ThreatFilter | None = None, follow: bool = False,
            stop: threading.Event | None = None) -> ThreatReader:
    """The threats in `cfg`'s threats topic as typed records, de-duplicated by id; `follow` keeps
    reading until `stop` is set (or the loop is left)."""
    return ThreatReader(cfg.kafka.client_settings(), cfg.topics.threats, match=match,
                        follow=follow, stop=stop)
