"""Kafka source and sink for the dataflow: one columnar RawBatch per partition poll; bulk produce.

The source snapshots the next offset per partition (Bytewax recovery; Kafka commits of group
`group_id` only report progress for lag monitoring), and
optionally ends the input once every partition is idle and drained (`IdleStop`: tests, benchmarks,
--until-idle).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.deadletters import bounded_dead_letter

log = logging.getLogger(__name__)

# librdkafka's defaults stall fetching around 0.2M msg/s (ARCHITECTURE.md §2); these keep it fed.
CONSUMER_TUNING = {
    # committed offsets only report progress (lag for monitoring tools); resuming uses Bytewax state
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 1000,
    "enable.partition.eof": False,
    "fetch.queue.backoff.ms": 1,
    "queued.min.messages": 200_000,
    "auto.offset.reset": "earliest",
}
PRODUCER_TUNING = {
    "linger.ms": 5,
    "enable.idempotence": True,
    "partitioner": "murmur2_random",  # same partition per key as Java clients
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
}


LAG_EVERY_S = 1.0
LagObserver = Callable[[str, int, int], None]  # (topic, partition, messages behind)


class KafkaFatalError(RuntimeError):
    """The broker refused us for good (auth, unknown topic, ...); restarting will not help."""


class ErrorReporter:
    """librdkafka error callback: one clear line per kind of error per `every_s` for the whole
    process, instead of a line per retry and client (a run has a consumer per partition, a
    producer, intel readers: an outage would otherwise print the same news a dozen times)."""

    _last: dict[int, float] = {}  # error code -> when it was last reported, shared by all clients
    _lock = threading.Lock()

    def __init__(self, who: str, every_s: float = 10.0) -> None:
        self.who, self.every_s = who, every_s

    def __call__(self, err: Any) -> None:
        now, code = time.monotonic(), int(err.code())
        with self._lock:
            if now - self._last.get(code, -self.every_s) < self.every_s:
                return
            self._last[code] = now
        log.warning("Kafka %s: %s — retrying (brokers unreachable or restarting?)", self.who,
                    err.str())


class LogRateLimit(logging.Filter):
    """librdkafka's own log lines, at most one per facility per `every_s`. Connection failures
    (FAIL, ERROR) are left out: the error callback already says them once, readably."""

    REPORTED = frozenset({"FAIL", "ERROR"})

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # confluent-kafka logs ("%s [%s] %s", facility, client name, text)
        args = record.args if isinstance(record.args, tuple) else ()
        facility = str(args[0]) if args else ""
        if facility in self.REPORTED:
            return False
        now = time.monotonic()
        if now - self.last.get(facility, -self.every_s) < self.every_s:
            return False
        self.last[facility] = now
        return True


def quiet_settings(who: str) -> dict[str, Any]:
    """Route librdkafka's own logs through Python logging (warnings and up, rate-limited) and
    report errors once per 10 s instead of a line per retry."""
    raw = logging.getLogger(f"librdkafka.{who}")
    raw.setLevel(logging.WARNING)
    if not any(isinstance(f, LogRateLimit) for f in raw.filters):
        raw.addFilter(LogRateLimit())
    return {"error_cb": ErrorReporter(who), "logger": raw}


class IdleStop:
    """`--until-idle` for a whole run: the input ends when every partition of every source built
    with this object (in this process) has had no data for `seconds` and was found at its end
    offset since. A partition ending on its own would skip what arrives on it later while the
    others run on: after a broker outage one partition can look drained while the producer is
    still reconnecting, and the run would then finish "successfully" without that input."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stopped = False
        self._last_data: dict[tuple[str, int], float] = {}
        self._drained_at: dict[tuple[str, int], float] = {}  # last end-offset check that passed
        self._lock = threading.Lock()

    def register(self, part: tuple[str, int]) -> None:
        with self._lock:
            self._last_data[part] = time.monotonic()

    def data(self, part: tuple[str, int]) -> None:
        self._last_data[part] = time.monotonic()

    def should_stop(self, part: tuple[str, int], drained: Callable[[], bool]) -> bool:
        """Called on an empty poll; `drained` asks the broker (so at most once per idle period)."""
        if self.stopped:
            return True
        now = time.monotonic()
        quiet_since = max(self._last_data[part], self._drained_at.get(part, 0.0))
        if now - quiet_since <= self.seconds:
            return False
        if not drained():
            self._last_data[part] = now  # unreachable or behind: not idle
            return False
        self._drained_at[part] = now
        with self._lock:
            self.stopped = all(self._drained_at.get(p, 0.0) > t and now - t > self.seconds
                               for p, t in self._last_data.items())
        if self.stopped:
            log.info("input idle for %.0f s on all %d partitions: ending the run", self.seconds,
                     len(self._last_data))
        return self.stopped


@dataclass
class _Partition(StatefulSourcePartition[RawBatch, int]):
    consumer: Consumer
    topic: str
    partition: int
    batch_size: int
    poll_timeout_s: float
    idle: IdleStop | None
    next_offset: int = 0  # what snapshot() records: resume here
    awake: datetime | None = None
    lag: LagObserver | None = None
    lag_at: float = 0.0  # monotonic time of the last lag report

    def next_batch(self) -> list[RawBatch]:
        if self.idle is not None and self.idle.stopped:
            raise StopIteration  # the run ends: the rest is for the next run (snapshot offset)
        # Never wait inside consume: one worker polls its partitions one after another, so a
        # wait per quiet partition would add up and delay the busy ones. Take what the client
        # has prefetched. A full batch means more is waiting: poll again at once. A partial one
        # means caught up: let poll_timeout_s of input gather first, since every batch has fixed
        # costs (decode set-up, a model call) that tiny batches would pay per handful of events.
        msgs = self.consumer.consume(self.batch_size, 0)
        good = [m for m in msgs if _ok(m)]
        last = good[-1].offset() if good else None
        if last is not None:
            self.next_offset = last + 1
        if self.lag is not None and time.monotonic() - self.lag_at >= LAG_EVERY_S:
            self._report_lag()
        self.awake = None if len(msgs) >= self.batch_size else (
            datetime.now(UTC) + timedelta(seconds=self.poll_timeout_s))
        if not good:
            if self.idle is not None and self.idle.should_stop((self.topic, self.partition),
                                                               self._drained):
                raise StopIteration
            return []
        if self.idle is not None:
            self.idle.data((self.topic, self.partition))
        offsets = np.fromiter((m.offset() for m in good), dtype=np.int64, count=len(good))
        return [RawBatch(self.topic, self.partition, offsets, [m.key() for m in good],
                         [m.value() for m in good])]

    def _report_lag(self) -> None:
        """High watermark (as of the last fetch response: no broker call) minus our position."""
        self.lag_at = time.monotonic()
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), cached=True)
        except KafkaException:
            return
        if high >= 0 and self.lag is not None:
            self.lag(self.topic, self.partition, max(0, high - max(self.next_offset, low)))

    def _drained(self) -> bool:
        """Connected and at the end of the partition (an outage or a backlog is not idleness)."""
        try:
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), timeout=5, cached=False)
        except KafkaException:
            return False
        return bool(high <= self.next_offset)

    def next_awake(self) -> datetime | None:
        return self.awake

    def snapshot(self) -> int:
        return self.next_offset

    def close(self) -> None:
        self.consumer.close()


def _ok(msg: Any) -> bool:
    err = msg.error()
    if err is None:
        return True
    if err.fatal() or err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._AUTHENTICATION):
        raise KafkaFatalError(f"Kafka consumer: {err.str()} — check brokers, topic and security "
                              "settings ([kafka] / [kafka.extra])")
    log.warning("Kafka consumer: %s (retrying)", err.str())  # transient: broker down, rebalance
    return False


def _error_text(e: KafkaException) -> str:
    err = e.args[0] if e.args else e
    return str(err.str()) if isinstance(err, KafkaError) else str(err)


class KafkaBatchSource(FixedPartitionedSource[RawBatch, int]):
    """Every partition of `topic`, read from the beginning or the snapshotted offset."""

    def __init__(self, settings: dict[str, Any], topic: str, batch_size: int = 2000,
                 poll_timeout_s: float = 0.05, idle: IdleStop | None = None,
                 group_id: str = "twinguard", lag: LagObserver | None = None) -> None:
        self.settings, self.topic, self.group_id = settings, topic, group_id
        self.batch_size, self.poll_timeout_s, self.idle = batch_size, poll_timeout_s, idle
        self.lag = lag  # told each partition's lag at most every LAG_EVERY_S (metrics)

    def list_parts(self) -> list[str]:
        where = self.settings.get("bootstrap.servers")
        c = Consumer({**self.settings, "group.id": "twinguard-meta", **CONSUMER_TUNING,
                      "enable.auto.commit": False, **quiet_settings("metadata")})
        try:
            meta = c.list_topics(self.topic, timeout=30)
        except KafkaException as e:
            raise KafkaFatalError(f"cannot read the partitions of {self.topic!r} from {where} "
                                  f"({_error_text(e)}): is Kafka running there? check [kafka] "
                                  "brokers and [kafka.extra] (TLS/SASL)") from e
        finally:
            c.close()
        t = meta.topics.get(self.topic)
        if t is None or t.error is not None or not t.partitions:
            raise KafkaFatalError(f"topic {self.topic!r} not found on {where}; "
                                  "create it with `twinguard topics create`")
        return [str(p) for p in sorted(t.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        p = int(for_part)
        consumer = Consumer({**self.settings, "group.id": self.group_id, **CONSUMER_TUNING,
                             **quiet_settings(f"consumer {self.topic}[{for_part}]")})
        start = OFFSET_BEGINNING if resume_state is None else resume_state
        consumer.assign([TopicPartition(self.topic, p, start)])
        if self.idle is not None:
            self.idle.register((self.topic, p))
        return _Partition(consumer, self.topic, p, self.batch_size, self.poll_timeout_s,
                          self.idle, next_offset=resume_state or 0, lag=self.lag)


# Errors that refuse one message for what it is (too large, invalid): the flow must not stop for it
PER_MESSAGE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE,
                                KafkaError.INVALID_MSG, KafkaError.INVALID_RECORD,
                                KafkaError.RECORD_LIST_TOO_LARGE})
SINK_STAGE = "sink"


class _ProducerPartition(StatelessSinkPartition[OutMsg]):
    def __init__(self, settings: dict[str, Any], topics: dict[str, str], confirm: bool) -> None:
        self.producer = Producer({**PRODUCER_TUNING, **settings, **quiet_settings("producer")})
        self.topics, self.confirm = topics, confirm
        self.errors: list[str] = []
        self.refused: list[tuple[str, bytes | None, bytes, str]] = []  # topic, key, value, why
        self.replaced = self.lost = 0  # outputs replaced by a dead letter; refused even so

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            return
        if err.code() in PER_MESSAGE_ERRORS:
            self.refused.append((msg.topic(), msg.key(), msg.value() or b"", err.str()))
        else:
            self.errors.append(err.str())

    def _replacement_delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._lose(f"its dead letter was refused too ({err.str()})")

    def _produce(self, topic: str, value: bytes, key: bytes | None,
                 on_delivery: Callable[[Any, Any], None]) -> str | None:
        """Queue one message; the broker's per-message refusal as text (None: queued)."""
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=on_delivery)
                return None
            except BufferError:  # local queue full: let librdkafka drain, then retry
                self.producer.poll(0.1)
            except KafkaException as e:
                err = e.args[0] if e.args else None
                if not isinstance(err, KafkaError) or err.code() not in PER_MESSAGE_ERRORS:
                    raise
                return str(err.str())

    def write_batch(self, items: list[OutMsg]) -> None:
        topics = self.topics
        for m in items:
            topic = topics[m.role]
            why = self._produce(topic, m.value, m.key, self._delivered)
            if why is not None:
                self.refused.append((topic, m.key, m.value, why))
        self._replace_refused()
        if self.confirm:  # recovery: the epoch's snapshot must not get ahead of its output
            self.producer.flush()
            if self._replace_refused():
                self.producer.flush()
        else:  # a restart re-reads the topics from the start: no need to wait for the broker
            self.producer.poll(0)  # delivery reports so far (errors raise below)
        self._raise_errors()

    def _replace_refused(self) -> int:
        """Each output the broker refused (e.g. MSG_SIZE_TOO_LARGE) becomes a bounded dead letter
        saying so; the flow goes on. Returns how many were replaced."""
        done, now_ms = 0, int(time.time() * 1000)
        while self.refused:
            topic, key, value, why = self.refused.pop()
            reason = (f"output of {len(value)} bytes to {topic} refused by Kafka: {why}; raise the "
                      "broker's message.max.bytes or lower pipeline.max_message_bytes")
            dl = bounded_dead_letter(topic, -1, -1, key, value, SINK_STAGE, reason, now_ms)
            log.warning("Kafka sink: %s", reason)
            failed = self._produce(self.topics["deadletter"], dl.value, dl.key,
                                   self._replacement_delivered)
            if failed is not None:
                self._lose(f"its dead letter was refused too ({failed})")
                continue
            self.replaced += 1
            done += 1
        return done

    def _lose(self, why: str) -> None:
        self.lost += 1
        log.error("Kafka sink: an output the broker refused is lost: %s (%d so far)", why, self.lost)

    def _raise_errors(self) -> None:
        if self.errors:
            errs, self.errors = self.errors[:3], []
            raise RuntimeError(f"Kafka producer could not deliver output: {errs}")

    def close(self) -> None:
        self.producer.flush()
        if self._replace_refused():
            self.producer.flush()
        if self.replaced or self.lost:
            log.warning("Kafka sink: %d refused outputs replaced by dead letters, %d lost",
                        self.replaced, self.lost)
        self._raise_errors()


class KafkaOutSink(DynamicSink[OutMsg]):
    """Writes each OutMsg to the topic configured for its role.

    With `confirm` (recovery on) a batch counts as written only once the broker has it, so a
    snapshot never covers output that a crash could lose (at-least-once). Without recovery a
    restart re-reads every input from the beginning, so waiting ~5-20 ms per batch for the
    broker's acknowledgement would buy nothing; delivery errors still stop the flow."""

    def __init__(self, settings: dict[str, Any], topics: dict[str, str],
                 confirm: bool = True) -> None:
        self.settings, self.topics, self.confirm = settings, topics, confirm

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        return _ProducerPartition(self.settings, self.topics, self.confirm)


def producer(settings: dict[str, Any], **overrides: Any) -> Producer:
    """A tuned producer for tools that write to Kafka (simulate, benchmarks)."""
    return Producer({**PRODUCER_TUNING, **settings, **overrides})


def produce_all(p: Producer, topic: str, items: list[tuple[bytes, bytes]],
                on_error: Callable[[str], None]) -> None:
    """Produce (key, value) pairs, waiting for queue space instead of failing."""
    def cb(err: Any, _m: Any) -> None:
        if err is not None:
            on_error(err.str())
    for key, value in items:
        while True:
            try:
                p.produce(topic, value, key, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
    p.poll(0)


def read_topic(settings: dict[str, Any], topic: str, timeout_s: float = 60.0
               ) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) currently in `topic`, up to the high watermarks seen at the start."""
    return [(m.key(), m.value() or b"") for m in scan_topic(settings, topic, timeout_s)]


def scan_topic(settings: dict[str, Any], topic: str, timeout_s: float = 60.0) -> Iterator[Any]:
    """Every message currently in `topic` (up to the high watermarks seen at the start)."""
    c = Consumer({**settings, "group.id": "twinguard-reader", **CONSUMER_TUNING,
                  "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaFatalError(f"topic {topic!r} not found")
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in meta.partitions}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, e in ends.items() if e > 0])
        pos = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + timeout_s
        while any(pos[p] < e for p, e in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: reached {pos} of {ends} in {timeout_s} s")
            for m in c.consume(5000, 0.5):
                part, off = m.partition(), m.offset()
                if _ok(m) and part is not None and off is not None and off < ends[part]:
                    yield m
                    pos[part] = off + 1
    finally:
        c.close()


def consumer_lag(settings: dict[str, Any], topic: str, group: str = "twinguard",
                 attempts: int = 5) -> int:
    """Messages in `topic` beyond what the dataflow's group last reported as consumed."""
    c = Consumer({**settings, "group.id": group, "enable.auto.commit": False})
    try:
        for attempt in range(attempts):
            try:
                meta = c.list_topics(topic, timeout=30).topics[topic]
                parts = [TopicPartition(topic, p) for p in meta.partitions]
                done = {tp.partition: max(tp.offset, 0) for tp in c.committed(parts, timeout=30)}
                return sum(c.get_watermark_offsets(tp, timeout=30)[1] - done[tp.partition]
                           for tp in parts)
            except KafkaException:  # e.g. NOT_LEADER right after a topic is created
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")
    finally:
        c.close()
