"""The archive's Kafka loop: windows, threats and feedback topics -> ArchiveStore, resumable.

It assigns every partition itself (no consumer group: the offsets that count are the manifest's,
committed with the files they produced, pipelines/archive/store.py) and starts each partition at the
manifest's next offset, else at the beginning. Bad records become dead letters (stage `archive`)
with the decode reason, produced and flushed before the manifest that moves past them is written,
so nothing vanishes; a kill between the two re-sends a dead letter (consumers de-duplicate dead
letters by topic/partition/offset, as for intel)."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from twinguard.operators.deadletters import bounded_dead_letter
from twinguard.operators.io.kafka import CONSUMER_TUNING, PRODUCER_TUNING, quiet_settings
from twinguard.pipelines.archive.records import KINDS, ArchiveRejectError, to_row
from twinguard.pipelines.archive.store import ArchiveStore
from twinguard.pipelines.config import Config

log = logging.getLogger(__name__)
STAGE = "archive"
PROGRESS_EVERY_S = 5.0


@dataclass
class Pending:
    """Rows and offsets read since the last flush."""

    groups: dict[tuple[str, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list))
    offsets: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    rows: int = 0
    since: float = field(default_factory=time.monotonic)


@dataclass
class Counts:
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    dead: int = 0


class ArchiveService:
    def __init__(self, cfg: Config, out: Path, max_bytes: int | None = None) -> None:
        self.cfg = cfg
        self.topics = {getattr(cfg.topics, k): k for k in KINDS}  # topic -> kind
        a = cfg.archive
        self.store = ArchiveStore(out, a.max_bytes if max_bytes is None else max_bytes)
        self.counts = Counts()
        self._halt = False

    def stop(self, *_: object) -> None:
        self._halt = True

    def run(self, once: bool = False, max_seconds: float | None = None) -> Counts:
        """Archive until stopped (SIGTERM/Ctrl-C, `max_seconds`) or, with `once`, until the end
        offsets seen at start are reached."""
        settings = self.cfg.kafka.client_settings()
        consumer = Consumer({**settings, "group.id": self.cfg.archive.group_id, **CONSUMER_TUNING,
                             "enable.auto.commit": False, **quiet_settings("archive")})
        dead = Producer({**PRODUCER_TUNING, **settings, **quiet_settings("archive-dlq")})
        try:
            ends = self._assign(consumer)
            self._loop(consumer, dead, ends if once else None, max_seconds)
        finally:
            consumer.close()
        return self.counts

    def _assign(self, consumer: Consumer) -> dict[tuple[str, int], int]:
        """Assign every partition at its resume point; the end offsets at start (for --once)."""
        assign, ends = [], {}
        for topic in self.topics:
            meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                msg = (f"archive: topic {topic!r} not found on {self.cfg.kafka.brokers}; create it "
                       "with `twinguard topics create`")
                raise RuntimeError(msg)
            for p in meta.partitions:
                nxt = self.store.next_offset(topic, p)
                assign.append(TopicPartition(topic, p, OFFSET_BEGINNING if nxt is None else nxt))
                lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if hi > max(lo, nxt or 0):
                    ends[(topic, p)] = hi
        consumer.assign(assign)
        log.info("archive: %d partitions of %s, resuming from %s", len(assign),
                 ", ".join(self.topics), self.store.root / "manifest.json")
        return ends

    def _loop(self, consumer: Consumer, dead: Producer, ends: dict[tuple[str, int], int] | None,
              max_seconds: float | None) -> None:
        pending, started, shown = Pending(), time.monotonic(), time.monotonic()
        a = self.cfg.archive
        while not self._halt:
            for m in consumer.consume(1000, 0.5):
                if m.error() is None:
                    topic, part, off = _position(m)
                    self._take(m, pending, dead)
                    if ends is not None and off + 1 >= ends.get((topic, part), 0):
                        ends.pop((topic, part), None)
            now = time.monotonic()
            if pending.rows >= a.flush_rows or (pending.offsets and now - pending.since >= a.flush_s):
                pending = self._flush(pending, dead)
            if now - shown >= PROGRESS_EVERY_S:
                self._progress()
                shown = now
            if (ends is not None and not ends) or (max_seconds and now - started >= max_seconds):
                break
        self._flush(pending, dead)
        self._progress()

    def _take(self, m: Any, pending: Pending, dead: Producer) -> None:
        topic, part, off = _position(m)
        kind = self.topics[topic]
        pending.offsets[topic][part] = off + 1
        try:
            date, row = to_row(kind, m.value())
        except ArchiveRejectError as e:
            self._dead_letter(dead, m, str(e))
            return
        row["_partition"], row["_offset"] = part, off
        pending.groups[(kind, date)].append(row)
        pending.rows += 1

    def _dead_letter(self, dead: Producer, m: Any, reason: str) -> None:
        self.counts.dead += 1
        out = bounded_dead_letter(m.topic(), m.partition(), m.offset(), m.key(), m.value() or b"",
                                  STAGE, reason, int(time.time() * 1000))
        log.warning("archive: %s[%d]@%d dead-lettered: %s", m.topic(), m.partition(), m.offset(),
                    reason)
        dead.produce(self.cfg.topics.deadletter, out.value, out.key)
        dead.poll(0)

    def _flush(self, pending: Pending, dead: Producer) -> Pending:
        if not pending.offsets:
            return Pending()
        left = dead.flush(30)  # dead letters acknowledged before the manifest moves past them
        if left:
            msg = f"archive: {left} dead letters not acknowledged by the broker; not committing"
            raise RuntimeError(msg)
        self.store.append(dict(pending.groups), {t: dict(p) for t, p in pending.offsets.items()})
        for (kind, _), rows in pending.groups.items():
            self.counts.written[kind] += len(rows)
        return Pending()

    def _progress(self) -> None:
        c = self.counts
        print(f"archive: {c.written['windows']} windows, {c.written['threats']} threats, "
              f"{c.written['feedback']} feedback written this run; {c.dead} dead-lettered; "
              f"{self.store.size() / 1e6:.1f} MB in {self.store.root}", file=sys.stderr, flush=True)


def _position(m: Any) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message (never None once it carries no error)."""
    return str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)


def serve(cfg: Config, out: Path, max_bytes: int | None, once: bool,
          max_seconds: float | None) -> int:
    svc = ArchiveService(cfg, out, max_bytes)

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        svc.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    svc.run(once, max_seconds)
    return 0
