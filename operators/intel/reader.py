"""Follows the compacted intel topic in a background thread and keeps an IntelTable current.

One reader per process (operators/intel/table.py says why intel is not part of the keyed dataflow). It
reads every partition from the beginning on each start, so the table needs no recovery state. A
malformed intel message (or one that fails in any way) goes to the dead-letter topic with a reason
and the reader goes on; a tombstone removes its key. If the reader itself stops for good, it says
so in `table.failure`, which the dataflow checks on every batch (a run never goes on silently
without intel). Every process re-reads the topic, so a malformed message is dead-lettered
once per process start: consumers de-duplicate dead letters by (topic, partition, offset).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.telemetry import dead_letter
from twinguard.operators.intel.table import (
    DEFAULT_LIMITS,
    IntelLimits,
    IntelRejectError,
    IntelTable,
    parse_intel,
)
from twinguard.operators.io.kafka import CONSUMER_TUNING, PRODUCER_TUNING, quiet_settings

log = logging.getLogger(__name__)
STAGE = "intel"
PUBLISH_EVERY_S = 5.0


class IntelReader(threading.Thread):
    """Daemon thread: consume intel -> table.apply -> table.publish; dead letters to Kafka."""

    def __init__(self, settings: dict[str, Any], topic: str, deadletter_topic: str,
                 table: IntelTable, poll_s: float = 0.5, limits: IntelLimits = DEFAULT_LIMITS) -> None:
        super().__init__(name="twinguard-intel", daemon=True)
        self.settings, self.topic, self.deadletter_topic = settings, topic, deadletter_topic
        self.table, self.poll_s, self.limits = table, poll_s, limits
        self.caught_up = threading.Event()  # set once the messages present at start are applied
        self._halt = threading.Event()
        self.applied = self.rejected = 0

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._read()
        except Exception as e:  # noqa: BLE001 - reported through the table: the flow stops on it
            self.table.failure = (f"intel reader for {self.topic} stopped: {type(e).__name__}: "
                                  f"{str(e)[:300]}")
            log.error("%s", self.table.failure)
            self.caught_up.set()

    def _read(self) -> None:
        consumer = Consumer({**self.settings, "group.id": "twinguard-intel", **CONSUMER_TUNING,
                             "enable.auto.commit": False, **quiet_settings("intel")})
        dead = Producer({**PRODUCER_TUNING, **self.settings, **quiet_settings("intel-dlq")})
        try:
            ends = self._assign(consumer)
            if ends is None:
                return
            self._follow(consumer, dead, ends)
        finally:
            self.caught_up.set()  # never leave a waiter hanging, even on failure
            consumer.close()
            dead.flush(10)

    def _assign(self, consumer: Consumer) -> dict[int, int] | None:
        """Assign every partition from the beginning; the high watermarks mark 'caught up'."""
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KafkaException(f"topic {self.topic!r} not found")
            ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)[1]
                    for p in meta.partitions}
        except KafkaException as e:
            log.warning("intel: cannot read %s (%s): running without topic intel; create it with "
                        "`twinguard topics create`", self.topic, e)
            return None
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
        return {p: e for p, e in ends.items() if e > 0}

    def _follow(self, consumer: Consumer, dead: Producer, pending: dict[int, int]) -> None:
        if not pending:
            self.caught_up.set()
        changed, published = False, time.monotonic()
        while not self._halt.is_set():
            msgs = [m for m in consumer.consume(1000, self.poll_s) if m.error() is None]
            if msgs:
                self._apply(msgs, dead)
                changed = True
                for m in msgs:
                    part, off = m.partition(), m.offset()
                    if part in pending and off is not None and off + 1 >= pending[part]:
                        del pending[part]
            # rebuilding is O(table): while a large backlog loads, at most every PUBLISH_EVERY_S
            if changed and (not pending or time.monotonic() - published >= PUBLISH_EVERY_S):
                self.table.publish(drop_expired_at=int(time.time() * 1000))
                changed, published = False, time.monotonic()
            if not pending and not self.caught_up.is_set():
                log.info("intel: %d entries from %s (%d rejected)", len(self.table), self.topic,
                         self.rejected)
                self.caught_up.set()
            dead.poll(0)

    def _apply(self, msgs: list[Any], dead: Producer) -> None:
        now_ms = int(time.time() * 1000)
        for m in msgs:
            key, value = m.key(), m.value()
            try:
                entry = parse_intel(value, key, self.limits)
            except Exception as e:  # noqa: BLE001 - one bad record never stops the reader
                self.rejected += 1
                reason = str(e) if isinstance(e, IntelRejectError) else (
                    f"intel record failed: {type(e).__name__}: {str(e)[:200]}")
                self._dead_letter(dead, m, reason, now_ms)
                continue
            self.applied += 1
            name = key.decode("utf-8", "replace") if key is not None else None
            self.table.apply(name or (entry.indicator if entry else ""), entry)

    def _dead_letter(self, dead: Producer, m: Any, reason: str, now_ms: int) -> None:
        raw = RawBatch(self.topic, m.partition(), np.array([m.offset()], dtype=np.int64),
                       [m.key()], [m.value()])
        out: OutMsg = dead_letter(raw, 0, STAGE, reason, now_ms)
        log.warning("intel: message at %s[%d]@%d rejected: %s", self.topic, m.partition(),
                    m.offset(), reason)
        try:
            dead.produce(self.deadletter_topic, out.value, out.key)
        except BufferError:
            dead.poll(1.0)
            dead.produce(self.deadletter_topic, out.value, out.key)


def start_intel_reader(settings: dict[str, Any], topic: str, deadletter_topic: str,
                       table: IntelTable, catch_up_timeout_s: float,
                       limits: IntelLimits = DEFAULT_LIMITS) -> IntelReader:
    """Start following `topic`; wait (bounded) until what it held at start is in the table."""
    reader = IntelReader(settings, topic, deadletter_topic, table, limits=limits)
    reader.start()
    if not reader.caught_up.wait(catch_up_timeout_s):
        log.warning("intel: %s not fully read after %.0f s; continuing, it keeps loading in the "
                    "background", topic, catch_up_timeout_s)
    return reader
