"""The Kafka sink: without recovery it does not wait for the broker per batch, yet every output is
delivered by close(), and an undeliverable output still stops the flow with the broker's reason."""

from __future__ import annotations

import pytest

from twinguard.operators.batches import OutMsg
from twinguard.operators.io.kafka import KafkaOutSink, read_topic
from twinguard.pipelines.config import Config


@pytest.mark.parametrize("confirm", [True, False])
def test_every_output_is_delivered_by_close(unique_topics: Config, confirm: bool) -> None:
    settings, topics = unique_topics.kafka.client_settings(), unique_topics.topics.all()
    part = KafkaOutSink(settings, topics, confirm=confirm).build("out", 0, 1)
    for b in range(20):
        part.write_batch([OutMsg("twins", f"d{i}".encode(), f"{b}:{i}".encode())
                          for i in range(100)])
    part.close()
    assert len(list(read_topic(settings, topics["twins"]))) == 2000


def test_an_undeliverable_output_raises_with_the_reason(unique_topics: Config) -> None:
    settings = {**unique_topics.kafka.client_settings(), "message.timeout.ms": 2000}
    topics = {**unique_topics.topics.all(), "twins": "no-such-topic-for-twinguard"}
    part = KafkaOutSink(settings, topics, confirm=False).build("out", 0, 1)
    part.write_batch([OutMsg("twins", b"d", b"v")])  # returns at once: nothing confirmed yet
    with pytest.raises(RuntimeError, match="could not deliver output"):
        part.close()
