"""A real Mosquitto (dynamic security) per test, and a config that executes against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import ADMIN, Mosquitto, running_mosquitto
from twinguard.pipelines.config import Config

PASSWORD_ENV = "TWINGUARD_TEST_MQTT_ADMIN_PASSWORD"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def executing(unique_topics: Config, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Fresh topics, dry run off, short TTL, the test's Mosquitto as the mqtt actuator."""
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.admin_password)
    mqtt = {"host": mosquitto.host, "port": str(mosquitto.port), "admin_user": ADMIN,
            "admin_password_env": PASSWORD_ENV, "timeout_s": "5"}
    return unique_topics.replace(response={"dry_run": False},
                                 respond={"mqtt": mqtt, "ttl_s": 4.0, "retry_backoff_s": 0.2,
                                          "group_id": f"respond-{unique_topics.topics.actions}"})
