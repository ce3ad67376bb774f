"""The real broker: metadata, topic creation, a produce/consume round trip and end offsets."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.kafka import local as kafka_local

pytestmark = pytest.mark.integration

MESSAGES = 1000


def test_broker_answers_metadata(kafka_brokers: str) -> None:
    meta = AdminClient({"bootstrap.servers": kafka_brokers}).list_topics(timeout=10)
    assert meta.brokers, "the broker listed no brokers in its metadata"


def test_local_broker_is_recorded_and_up_is_idempotent(kafka_brokers: str) -> None:
    # make test's broker (deploy/kafka/with-broker.sh) and the fixture's both record their state
    info = kafka_local.status()
    assert info is not None and info.brokers == kafka_brokers
    assert kafka_local.up(port=info.port) == info  # already running: returned, not restarted
    assert "Kafka Server started" in info.log_path.read_text()


def test_create_topics_creates_all_configured_topics(kafka_brokers: str, config: Config) -> None:
    suffix = uuid.uuid4().hex[:12]
    cfg = config.replace(
        kafka={"brokers": kafka_brokers},
        topics={r: f"{n}.{suffix}" for r, n in config.topics.all().items()},
    )
    settings = cfg.kafka.client_settings()
    specs = kafka_admin.topic_specs(cfg, partitions=3)
    try:
        created = kafka_admin.create_topics(settings, specs)
        assert sorted(created) == sorted(cfg.topics.all().values())
        assert kafka_admin.create_topics(settings, specs) == []  # existing topics are tolerated
        _assert_layout(settings, cfg, partitions=3)
    finally:
        kafka_admin.delete_topics(settings, cfg.topics.all().values())


def test_produce_and_consume_round_trip(unique_topics: Config) -> None:
    settings = unique_topics.kafka.client_settings()
    topic = unique_topics.topics.telemetry
    sent = {f"event-{i}".encode() for i in range(MESSAGES)}
    _produce(settings, topic, sorted(sent))

    offsets = kafka_admin.end_offsets(settings, topic)
    assert set(offsets) == {0, 1}
    assert sum(offsets.values()) == MESSAGES
    assert all(n > 0 for n in offsets.values()), f"keys did not spread over partitions: {offsets}"

    received = _consume_all(settings, topic, list(offsets), MESSAGES)
    assert len(received) == MESSAGES
    assert set(received) == sent


def test_end_offsets_of_a_missing_topic_is_a_clear_error(kafka_brokers: str) -> None:
    with pytest.raises(kafka_admin.KafkaAdminError, match="does not exist"):
        kafka_admin.end_offsets({"bootstrap.servers": kafka_brokers}, f"absent.{uuid.uuid4().hex}")


def _assert_layout(settings: dict[str, str], cfg: Config, partitions: int) -> None:
    """Every configured topic has the partition count; exactly intel, twins, action_results (the
    respond service's state), feedback (latest verdict per threat) and models (the registry) are
    compacted."""
    admin = AdminClient(settings)
    meta = admin.list_topics(timeout=10).topics
    for role, name in cfg.topics.all().items():
        assert len(meta[name].partitions) == partitions, role
        resource = ConfigResource(ResourceType.TOPIC, name)
        entries = admin.describe_configs([resource])[resource].result(timeout=10)
        expected = "compact" if role in ("intel", "twins", "action_results", "feedback",
                                         "models") else "delete"
        assert entries["cleanup.policy"].value == expected, role


def _produce(settings: dict[str, str], topic: str, values: list[bytes]) -> None:
    """Produce keyed messages and fail on any delivery error."""
    errors: list[object] = []
    producer = Producer({**settings, "partitioner": "murmur2_random", "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(
            topic,
            value,
            key=f"device-{i % 50}".encode(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert errors == []


def _consume_all(
    settings: dict[str, str], topic: str, partitions: list[int], expected: int
) -> list[bytes]:
    """Read every partition from the beginning until `expected` messages arrived or 60 s passed."""
    consumer = Consumer(
        {**settings, "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    received: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=1.0):
                assert msg.error() is None, msg.error()
                received.append(msg.value())
    finally:
        consumer.close()
    return received
