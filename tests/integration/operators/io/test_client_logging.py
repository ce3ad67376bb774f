"""librdkafka's chatter with no broker to talk to: its raw lines go through Python logging, the
connection failures become one readable warning per kind of error, whatever the retry count."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from twinguard.operators.io.kafka import ErrorReporter, quiet_settings

POLL_S = 4.0  # librdkafka retries a refused connection every 0.1-1 s: many retries in this time


def test_unreachable_broker_is_reported_once_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    ErrorReporter._last.clear()  # process-wide by design: start from a clean slate
    caplog.set_level(logging.DEBUG)
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "probe",
                         "reconnect.backoff.max.ms": 200, **quiet_settings("probe")})
    consumer.assign([TopicPartition("anything", 0)])
    try:
        end = time.monotonic() + POLL_S
        while time.monotonic() < end:  # librdkafka serves callbacks and logs only while polled
            consumer.consume(10, 0.1)
    finally:
        consumer.close()
    ours = [r.getMessage() for r in caplog.records if r.name == "twinguard.operators.io.kafka"]
    raw = [r for r in caplog.records if r.name.startswith("librdkafka.")]
    assert ours and all("Kafka probe:" in m and "retrying" in m for m in ours), ours
    assert len(ours) <= 3, ours  # one per kind (transport failure, all brokers down)
    assert all(r.args and r.args[0] not in ("FAIL", "ERROR") for r in raw)  # type: ignore[index]
