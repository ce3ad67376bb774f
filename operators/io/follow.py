"""Every process follows a topic: a background thread that reads a (compacted) topic from the
beginning on each start and hands each record to a subclass, which keeps some reference data current.

Used for intel (operators/intel/reader.py), analyst feedback (operators/feedback/reader.py) and the
model registry (operators/models/reader.py). Reading from the beginning on every start means the
data they build needs no recovery state: a restart rebuilds it from the topic. A record the subclass
refuses (`handle` raises) goes to the dead-letter topic with the reason and the reader goes on; if
the reader itself stops for good, `failed` is told, so the owner can stop the run loudly. Every
process re-reads the topic, so a refused record is dead-lettered once per process start: consumers
de-duplicate dead letters by (topic, partition, offset).
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
from twinguard.operators.io.kafka import CONSUMER_TUNING, PRODUCER_TUNING, quiet_settings

log = logging.getLogger(__name__)
PUBLISH_EVERY_S = 5.0


class RecordRejectedError(ValueError):
    """A followed record is refused; the message is the dead letter's one-line reason."""


class TopicFollower(threading.Thread):
    """Daemon thread: consume `topic` from the beginning -> handle each record -> publish.

    Subclasses set `stage` (the dead letters' stage and the log prefix) and implement `handle`;
    `publish` runs after changes (at most every PUBLISH_EVERY_S while a backlog loads)."""

    stage = "follow"
    rejects: tuple[type[Exception], ...] = (RecordRejectedError,)  # their message is the reason

    def __init__(self, settings: dict[str, Any], topic: str, deadletter_topic: str,
                 poll_s: float = 0.5) -> None:
        super().__init__(name=f"twinguard-{self.stage}", daemon=True)
        self.settings, self.topic, self.deadletter_topic = settings, topic, deadletter_topic
        self.poll_s = poll_s
        self.caught_up = threading.Event()  # set once the messages present at start are handled
        self._halt = threading.Event()
        self.applied = self.rejected = 0

    # -- what a subclass provides
    def handle(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        """Apply one record; raise (RecordRejectedError for a one-line reason) to refuse it."""
        raise NotImplementedError

    def publish(self) -> None:
        """Make what `handle` applied visible to the readers of the data (after changes)."""

    def failed(self, reason: str) -> None:
        """The reader stopped for good (default: logged only)."""

    def summary(self) -> str:
        return f"{self.applied} records"

    # -- the loop
    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._read()
        except Exception as e:  # noqa: BLE001 - reported through `failed`: the owner decides
            reason = f"{self.stage} reader for {self.topic} stopped: {type(e).__name__}: {str(e)[:300]}"
            log.error("%s", reason)
            self.failed(reason)
            self.caught_up.set()

    def _read(self) -> None:
        consumer = Consumer({**self.settings, "group.id": f"twinguard-{self.stage}",
                             **CONSUMER_TUNING, "enable.auto.commit": False,
                             **quiet_settings(self.stage)})
        dead = Producer({**PRODUCER_TUNING, **self.settings, **quiet_settings(f"{self.stage}-dlq")})
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
            log.warning("%s: cannot read %s (%s): running without it; create it with "
                        "`twinguard topics create`", self.stage, self.topic, e)
            return None
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
        return {p: e for p, e in ends.items() if e > 0}

    def _follow(self, consumer: Consumer, dead: Producer, pending: dict[int, int]) -> None:
        if not pending:
            self.publish()
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
            # publishing may be O(data): while a large backlog loads, at most every PUBLISH_EVERY_S
            if changed and (not pending or time.monotonic() - published >= PUBLISH_EVERY_S):
                self.publish()
                changed, published = False, time.monotonic()
            if not pending and not self.caught_up.is_set():
                log.info("%s: %s from %s (%d rejected)", self.stage, self.summary(), self.topic,
                         self.rejected)
                self.caught_up.set()
            dead.poll(0)

    def _apply(self, msgs: list[Any], dead: Producer) -> None:
        now_ms = int(time.time() * 1000)
        for m in msgs:
            try:
                self.handle(m.key(), m.value(), now_ms)
            except Exception as e:  # noqa: BLE001 - one bad record never stops the reader
                self.rejected += 1
                reason = str(e) if isinstance(e, self.rejects) else (
                    f"{self.stage} record failed: {type(e).__name__}: {str(e)[:200]}")
                self._dead_letter(dead, m, reason, now_ms)
                continue
            self.applied += 1

    def _dead_letter(self, dead: Producer, m: Any, reason: str, now_ms: int) -> None:
        raw = RawBatch(self.topic, m.partition(), np.array([m.offset()], dtype=np.int64),
                       [m.key()], [m.value()])
        out: OutMsg = dead_letter(raw, 0, self.stage, reason, now_ms)
        log.warning("%s: message at %s[%d]@%d rejected: %s", self.stage, self.topic, m.partition(),
                    m.offset(), reason)
        try:
            dead.produce(self.deadletter_topic, out.value, out.key)
        except BufferError:
            dead.poll(1.0)
            dead.produce(self.deadletter_topic, out.value, out.key)


def start_following(reader: TopicFollower, catch_up_timeout_s: float) -> None:
    """Start `reader`; wait (bounded) until what its topic held at start is applied."""
    reader.start()
    if not reader.caught_up.wait(catch_up_timeout_s):
        log.warning("%s: %s not fully read after %.0f s; continuing, it keeps loading in the "
                    "background", reader.stage, reader.topic, catch_up_timeout_s)
