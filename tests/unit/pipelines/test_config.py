"""Configuration loading: defaults < file < environment, strict keys and types, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinguard.pipelines.config import Config, ConfigError, load_config, masked


def test_defaults_load() -> None:
    cfg = load_config(env={})
    assert cfg == Config()  # defaults.toml and the dataclass defaults agree
    assert cfg.kafka.brokers == "127.0.0.1:9092"
    assert cfg.topics.partitions == 4
    assert set(cfg.topics.all()) == {
        "telemetry",
        "activity",
        "intel",
        "feedback",
        "twins",
        "threats",
        "actions",
        "deadletter",
        "action_results",
        "action_decisions",
        "commands",
        "models",
        "windows",
    }


def test_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[kafka]\nbrokers = "kafka-1:9092,kafka-2:9092"\n[topics]\npartitions = 12\n')
    cfg = load_config(path, env={})
    assert cfg.kafka.brokers == "kafka-1:9092,kafka-2:9092"
    assert cfg.topics.partitions == 12
    assert cfg.kafka.group_id == "twinguard"  # keys the file does not name keep their defaults


def test_env_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[kafka]\nbrokers = "from-file:9092"\n')
    env = {"TWINGUARD__KAFKA__BROKERS": "10.0.0.5:9092", "TWINGUARD__TOPICS__PARTITIONS": "6"}
    cfg = load_config(path, env=env)
    assert cfg.kafka.brokers == "10.0.0.5:9092"
    assert cfg.topics.partitions == 6  # env values are strings, coerced to the field's type


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", env={})


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[kafka]\nbroker = 'x:9092'\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'kafka\.broker'"):
        load_config(path, env={})


def test_unknown_env_section_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'kafak'"):
        load_config(env={"TWINGUARD__KAFAK__BROKERS": "x:9092"})


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("TWINGUARD__TOPICS__PARTITIONS", "four", "topics.partitions"),
        ("TWINGUARD__RESPONSE__DRY_RUN", "maybe", "response.dry_run"),
        ("TWINGUARD__DETECTION__MODEL_THRESHOLD", "high", "detection.model_threshold"),
    ],
)
def test_bad_type_is_an_error(name: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}' expects .*{value}"):
        load_config(env={name: value})


def test_env_booleans() -> None:
    assert load_config(env={"TWINGUARD__RESPONSE__DRY_RUN": "false"}).response.dry_run is False
    assert load_config(env={"TWINGUARD__RESPONSE__DRY_RUN": "YES"}).response.dry_run is True


def test_unprefixed_env_is_ignored() -> None:
    assert load_config(env={"KAFKA__BROKERS": "x:1", "TWINGUARD_KAFKA_LIB": "/x"}) == Config()


def test_replace_changes_only_named_keys(config: Config) -> None:
    cfg = config.replace(kafka={"brokers": "b:1"}, topics={"telemetry": "t.x"})
    assert (cfg.kafka.brokers, cfg.topics.telemetry) == ("b:1", "t.x")
    assert cfg.kafka.group_id == "twinguard" and cfg.topics.intel == "twinguard.intel"


def test_extra_passes_through_to_client_settings(config: Config) -> None:
    cfg = config.replace(kafka={"extra": {"security.protocol": "SASL_SSL"}})
    assert cfg.kafka.client_settings(**{"group.id": "g"}) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "group.id": "g",
    }


def test_masked_hides_secrets_but_not_brokers(config: Config) -> None:
    extra = {"sasl.password": "hunter2", "ssl.key.password": "s3cret", "sasl.username": "svc"}
    cfg = config.replace(kafka={"brokers": "k:9093", "extra": extra})
    shown = masked(cfg)
    assert shown["kafka"]["extra"]["sasl.password"] == "***"
    assert shown["kafka"]["extra"]["ssl.key.password"] == "***"
    assert shown["kafka"]["extra"]["sasl.username"] == "svc"
    assert shown["kafka"]["brokers"] == "k:9093"
    assert "hunter2" not in repr(shown) and "s3cret" not in repr(shown)
    assert cfg.kafka.extra["sasl.password"] == "hunter2"  # masking copies, the config is untouched


def test_env_sets_dotted_librdkafka_keys_and_they_are_masked() -> None:
    cfg = load_config(env={"TWINGUARD__KAFKA__EXTRA__SASL__PASSWORD": "hunter2",
                           "TWINGUARD__KAFKA__EXTRA__SECURITY__PROTOCOL": "SASL_SSL"})
    assert cfg.kafka.extra == {"sasl.password": "hunter2", "security.protocol": "SASL_SSL"}
    shown = masked(cfg)
    assert shown["kafka"]["extra"]["sasl.password"] == "***"
    assert shown["kafka"]["extra"]["security.protocol"] == "SASL_SSL"
    assert shown["integrity"]["master_key_env"] == "TWINGUARD_HMAC_MASTER"


def test_env_value_for_a_whole_section_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="is a section"):
        load_config(env={"TWINGUARD__KAFKA__EXTRA": "x"})
