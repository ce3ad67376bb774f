"""A private local Kafka broker for one benchmark run, plus topic, produce and read helpers.

The broker gets its own TWINGUARD_STATE_DIR and data dir under a temp folder, so it never touches a
broker someone else started with `twinguard kafka up`; it is always stopped at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinguard.benchmarks.harness import env_vars, log
from twinguard.operators.io.kafka import produce_all, producer, scan_topic
from twinguard.pipelines.kafka import local as kafka_local
from twinguard.pipelines.kafka.admin import TopicSpec, create_topics, end_offsets

OUT_ROLES = ("twins", "threats", "actions", "deadletter")
COMPACTED = ("twins",)
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}  # when the broker appended it


@contextmanager
def private_broker() -> Iterator[str]:
    """Start a fresh single-node broker on a free port; yield its bootstrap address."""
    tmp = Path(tempfile.mkdtemp(prefix="twinguard-bench-"))
    with env_vars({"TWINGUARD_STATE_DIR": str(tmp / "state")}):
        try:
            t0 = time.monotonic()
            info = kafka_local.up(kafka_local.free_port(), tmp / "kafka", timeout_s=180)
            log(f"private broker {info.brokers} up in {time.monotonic() - t0:.1f} s "
                f"(pid {info.pid}, data {tmp})")
            yield info.brokers
        finally:
            stopped = kafka_local.down()
            log(f"private broker {'stopped' if stopped else 'was not running'}")
            shutil.rmtree(tmp, ignore_errors=True)


def settings(brokers: str) -> dict[str, Any]:
    return {"bootstrap.servers": brokers}


def output_topics(brokers: str, run: str, partitions: int) -> dict[str, str]:
    """Fresh output topics for one run (role -> name); threats carry broker append time."""
    names = {role: f"bench.{run}.{role}" for role in OUT_ROLES}
    specs = []
    for role, name in names.items():
        conf = dict(APPEND_TIME)
        if role in COMPACTED:
            conf["cleanup.policy"] = "compact"
        specs.append(TopicSpec(name, partitions, conf))
    create_topics(settings(brokers), specs)
    return names


def input_topic(brokers: str, name: str, partitions: int) -> str:
    create_topics(settings(brokers), [TopicSpec(name, partitions)])
    return name


def produce(brokers: str, topic: str, keys: list[bytes], values: list[bytes]) -> float:
    """Produce every message (keyed by device id), wait for delivery; returns seconds taken."""
    errors: list[str] = []
    p = producer(settings(brokers))
    t0 = time.perf_counter()
    step = 20_000
    for i in range(0, len(values), step):
        produce_all(p, topic, list(zip(keys[i:i + step], values[i:i + step], strict=True)),
                    errors.append)
        if errors:
            raise RuntimeError(f"producing to {topic}: {errors[:3]}")
    left = p.flush(120)
    if left or errors:
        raise RuntimeError(f"{left} messages not delivered to {topic}: {errors[:3]}")
    return time.perf_counter() - t0


def message_count(brokers: str, topic: str) -> int:
    return sum(end_offsets(settings(brokers), topic).values())


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: int  # 1 = producer create time, 2 = broker log-append time


def read_records(brokers: str, topic: str, timeout_s: float = 120.0) -> list[Record]:
    """Every record now in `topic`, with its Kafka timestamp."""
    out: list[Record] = []
    for m in scan_topic(settings(brokers), topic, timeout_s):
        ttype, ts = m.timestamp()
        out.append(Record(m.key(), m.value() or b"", m.partition(), m.offset(), ts, ttype))
    return out


def timestamps_at(brokers: str, topic: str, where: set[tuple[int, int]], timeout_s: float = 10.0
                  ) -> dict[tuple[int, int], int]:
    """Kafka timestamp (ms) of the record at each (partition, offset) of `topic` (missing ones
    left out): one seek per record, for the few hundred a latency run asks about."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**settings(brokers), "group.id": "twinguard-bench-seek",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    out: dict[tuple[int, int], int] = {}
    try:
        for part, off in sorted(where):
            c.assign([TopicPartition(topic, part, off)])
            for m in c.consume(1, timeout_s):
                if m.error() is None and m.offset() == off:
                    out[(part, off)] = int(m.timestamp()[1])
    finally:
        c.close()
    return out
