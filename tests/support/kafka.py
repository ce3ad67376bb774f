"""Producing to and reading back the topics of a run on the real broker."""

from __future__ import annotations

import json

from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.pipelines.config import Config

Doc = dict[str, object]


def produce(cfg: Config, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Keyed messages to `topic`, every one confirmed by the broker."""
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, topic, items, errors.append)
    assert p.flush(30) == 0 and not errors, errors


def read_outputs(cfg: Config) -> tuple[list[Doc], list[Doc], dict[str, Doc]]:
    """Threats, dead letters and the latest twin per device (compacted-topic semantics) of a run."""
    settings = cfg.kafka.client_settings()
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    dead = [json.loads(v) for _, v in read_topic(settings, cfg.topics.deadletter)]
    twins: dict[str, Doc] = {}
    for k, v in read_topic(settings, cfg.topics.twins):
        assert k is not None
        twins[k.decode()] = json.loads(v)  # the last value wins
    return threats, dead, twins
