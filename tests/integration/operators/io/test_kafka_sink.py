"""The Kafka sink: without recovery it does not wait for the broker per batch, yet every output is
delivered by close(), an undeliverable output still stops the flow with the broker's reason, and
an output the broker refuses for its size becomes a bounded dead letter instead."""

from __future__ import annotations

import base64
import hashlib
import json
import random

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


@pytest.mark.parametrize(("confirm", "local_limit"), [(True, None), (False, None),
                                                      (True, 8_000_000), (False, 8_000_000)])
def test_an_output_too_large_for_kafka_becomes_a_bounded_dead_letter(
        unique_topics: Config, confirm: bool, local_limit: int | None) -> None:
    """Refused by the client's own size check (default) or by the broker (client limit raised):
    either way the flow goes on, the other outputs arrive, and a dead letter says what happened."""
    settings = unique_topics.kafka.client_settings()
    client = settings if local_limit is None else {**settings, "message.max.bytes": local_limit}
    topics = unique_topics.topics.all()
    part = KafkaOutSink(client, topics, confirm=confirm).build("out", 0, 1)
    huge = random.Random(7).randbytes(2_000_000)  # incompressible: lz4 cannot shrink it under 1 MB
    part.write_batch([OutMsg("twins", b"d0", b"small"), OutMsg("twins", b"d1", huge),
                      OutMsg("twins", b"d2", b"small too")])
    part.close()
    assert sorted(k for k, _ in read_topic(settings, topics["twins"])) == [b"d0", b"d2"]
    dead = [json.loads(v) for _, v in read_topic(settings, topics["deadletter"])]
    assert len(dead) == 1 and part.replaced == 1 and part.lost == 0
    d = dead[0]
    assert d["stage"] == "sink" and d["topic"] == topics["twins"] and "refused by Kafka" in d["reason"]
    assert d["value_length"] == len(huge) and d["truncated"] is True
    assert d["value_sha256"] == hashlib.sha256(huge).hexdigest()
    assert base64.b64decode(d["value_b64"]) == huge[:len(base64.b64decode(d["value_b64"]))]
