"""Integration fixtures: one real Kafka broker per test session and fresh topics per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.kafka import local as kafka_local

TEST_PARTITIONS = 2


@pytest.fixture(scope="session")
def kafka_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers: $TWINGUARD_TEST_BROKERS, else a broker started for this session."""
    external = os.environ.get("TWINGUARD_TEST_BROKERS")
    if external:
        yield external
        return
    state = tmp_path_factory.mktemp("kafka-state")
    data = tmp_path_factory.mktemp("kafka-data")
    # Own state dir: never touches (or stops) a developer's broker recorded in .twinguard/.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINGUARD_STATE_DIR", str(state))
        info = kafka_local.up(port=kafka_local.free_port(), data_dir=data)
        try:
            yield info.brokers
        finally:
            kafka_local.down()


@pytest.fixture
def unique_topics(kafka_brokers: str, config: Config) -> Iterator[Config]:
    """A Config whose eight topics are new, uniquely named, and created with 2 partitions each."""
    suffix = uuid.uuid4().hex[:12]
    names: dict[str, object] = {r: f"{n}.{suffix}" for r, n in config.topics.all().items()}
    cfg = config.replace(
        kafka={"brokers": kafka_brokers}, topics={**names, "partitions": TEST_PARTITIONS}
    )
    settings = cfg.kafka.client_settings()
    kafka_admin.create_topics(settings, kafka_admin.topic_specs(cfg))
    yield cfg
    kafka_admin.delete_topics(settings, cfg.topics.all().values())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ so `-m 'not integration'` skips the broker."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.integration)

