"""Kafka topic administration: create the configured topics, wait for leaders, read end offsets."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # typed here; confluent_kafka.admin has no __all__

from twinguard.operators.io.kafka import quiet_settings
from twinguard.pipelines.config import Config

log = logging.getLogger(__name__)

# keyed latest-value tables: keep the last record per key
COMPACTED_ROLES = ("intel", "twins", "action_results", "feedback", "models")


class KafkaAdminError(RuntimeError):
    """A topic operation failed or timed out; the message names the topic and the reason."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count, topic configs; replication -1 = broker default."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = -1


def topic_specs(cfg: Config, partitions: int | None = None) -> list[TopicSpec]:
    """Every configured topic, in and out, with one partition count; intel and twins compacted."""
    count = cfg.topics.partitions if partitions is None else partitions
    if count < 1:
        raise KafkaAdminError(f"topics need at least 1 partition, got {count}")
    return [
        TopicSpec(name, count, {"cleanup.policy": "compact"} if role in COMPACTED_ROLES else {})
        for role, name in cfg.topics.all().items()
    ]


def wait_ready(settings: dict[str, Any], timeout_s: float = 60) -> None:
    """Block until the cluster answers metadata with at least one broker."""
    admin = AdminClient(settings)
    last: object = "no answer"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=min(2.0, timeout_s)).brokers:
                return
            last = "metadata lists no brokers"
        except KafkaException as e:
            last = e.args[0]
        time.sleep(0.2)
    raise KafkaAdminError(
        f"Kafka at {settings.get('bootstrap.servers')} not ready after {timeout_s:.0f} s ({last}); "
        "check kafka.brokers and kafka.extra (TLS/SASL), or start the local broker"
    )


def require_topics(settings: dict[str, Any], names: Iterable[str], timeout_s: float = 15) -> None:
    """Fail fast with one line that says what to do when the cluster does not answer or one of
    `names` does not exist (a dataflow would otherwise die deep inside Bytewax)."""
    where = settings.get("bootstrap.servers")
    admin = AdminClient({**settings, **quiet_settings("admin")})
    try:
        topics = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as e:
        err = e.args[0]
        raise KafkaAdminError(
            f"Kafka at {where} did not answer within {timeout_s:g} s ([startup] broker_timeout_s) "
            f"({err.str() if isinstance(err, KafkaError) else err}): start it (`twinguard kafka "
            "up`) or fix [kafka] brokers and [kafka.extra] (TLS/SASL)") from None
    missing = [n for n in names if n not in topics or topics[n].error is not None]
    if missing:
        raise KafkaAdminError(f"topic {', '.join(map(repr, missing))} not found on {where}: create "
                              "the topics with `twinguard topics create` (or fix [topics])")


def create_topics(
    settings: dict[str, Any], specs: list[TopicSpec], timeout_s: float = 60
) -> list[str]:
    """Create the missing topics, then wait until every partition has a leader; names created."""
    admin = AdminClient(settings)
    deadline = time.monotonic() + timeout_s
    existing = _metadata(admin, timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    _warn_partition_mismatch(existing, [s for s in specs if s.name in existing])
    created = _create(admin, missing, deadline) if missing else []
    want = {s.name: (s.partitions if s.name in created else 1) for s in specs}
    _wait_for_leaders(admin, want, deadline)
    return created


def delete_topics(
    settings: dict[str, Any], names: Iterable[str], timeout_s: float = 60
) -> list[str]:
    """Delete topics (absent ones are skipped) and wait until metadata no longer lists them."""
    names = list(names)
    if not names:
        return []
    admin = AdminClient(settings)
    deadline = time.monotonic() + timeout_s
    futures = admin.delete_topics(names, operation_timeout=timeout_s)
    deleted = [
        n for n, f in futures.items() if _settle(n, f, deadline, KafkaError.UNKNOWN_TOPIC_OR_PART)
    ]
    if not _until(lambda: not set(deleted) & set(_metadata(admin, 5).topics), deadline):
        raise KafkaAdminError(f"topics {deleted} still listed {timeout_s:.0f} s after deletion")
    return deleted


def end_offsets(settings: dict[str, Any], topic: str, timeout_s: float = 30) -> dict[int, int]:
    """High watermark (next offset to be written) of every partition of a topic."""
    meta = _metadata(AdminClient(settings), timeout_s).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaAdminError(f"topic {topic!r} does not exist (or is not readable) on the cluster")
    # A consumer that never subscribes or commits: the group id is required but stays unused.
    consumer = Consumer(
        {**settings, "group.id": "twinguard-end-offsets", "enable.auto.commit": False}
    )
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
            for p in sorted(meta.partitions)
        }
    except KafkaException as e:
        raise KafkaAdminError(f"reading end offsets of {topic!r} failed: {e.args[0]}") from None
    finally:
        consumer.close()


def _metadata(admin: Any, timeout_s: float) -> Any:
    """Cluster metadata, or a KafkaAdminError that says the cluster is unreachable."""
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as e:
        raise KafkaAdminError(
            f"cannot read cluster metadata ({e.args[0]}); is Kafka running at the configured "
            "brokers?"
        ) from None


def _create(admin: Any, specs: list[TopicSpec], deadline: float) -> list[str]:
    """Issue one CreateTopics request and wait on every result; names this call created."""
    new = [
        NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config)) for s in specs
    ]
    remaining = max(1.0, deadline - time.monotonic())
    futures = admin.create_topics(new, operation_timeout=remaining, request_timeout=remaining)
    return [
        n for n, f in futures.items() if _settle(n, f, deadline, KafkaError.TOPIC_ALREADY_EXISTS)
    ]


def _settle(name: str, future: Any, deadline: float, tolerated: int) -> bool:
    """Wait for one admin future: True on success, False on the tolerated error, else raise."""
    try:
        future.result(timeout=max(0.1, deadline - time.monotonic()))
    except KafkaException as e:
        err = e.args[0]
        if isinstance(err, KafkaError) and err.code() == tolerated:
            return False
        raise KafkaAdminError(f"topic {name!r}: {err}") from None
    except concurrent.futures.TimeoutError:  # a distinct class before Python 3.11
        raise KafkaAdminError(f"topic {name!r}: no answer from the cluster in time") from None
    return True


def _wait_for_leaders(admin: Any, want: dict[str, int], deadline: float) -> None:
    """Wait until each topic lists at least `want` partitions and every one has a leader."""

    def ready() -> bool:
        topics = _metadata(admin, 5).topics
        return all(_has_leaders(topics.get(name), n) for name, n in want.items())

    if not _until(ready, deadline):
        raise KafkaAdminError(
            f"partitions of {sorted(want)} still have no leader; check the broker log"
        )


def _has_leaders(meta: Any, min_partitions: int) -> bool:
    """True when topic metadata has enough partitions, each with a leader and no error."""
    if meta is None or meta.error is not None or len(meta.partitions) < min_partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in meta.partitions.values())


def _warn_partition_mismatch(existing: dict[str, Any], specs: list[TopicSpec]) -> None:
    """Existing topics are left alone, but a different partition count is worth a warning."""
    for spec in specs:
        have = len(existing[spec.name].partitions)
        if have != spec.partitions:
            log.warning(
                "topic %s exists with %d partitions (configured: %d); left as is",
                spec.name,
                have,
                spec.partitions,
            )


def _until(done: Callable[[], bool], deadline: float) -> bool:
    """Poll `done` every 0.2 s until it is true or the deadline passes."""
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True
