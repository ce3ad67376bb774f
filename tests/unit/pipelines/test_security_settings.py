"""TLS/SASL settings reach every Kafka client; secrets stay masked; keys never come from telemetry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinguard.pipelines.config import load_config, masked
from twinguard.pipelines.flow import kafka_sink, kafka_source

EXAMPLE = Path(__file__).parents[3] / "deploy" / "config" / "secure-kafka.toml"


@pytest.fixture
def secure_cfg():  # type: ignore[no-untyped-def]
    return load_config(EXAMPLE, env={"TWINGUARD__KAFKA__EXTRA__SASL__PASSWORD": "s3cr3t"})


def test_extra_settings_reach_source_and_sink(secure_cfg) -> None:  # type: ignore[no-untyped-def]
    for settings in (kafka_source(secure_cfg).settings, kafka_sink(secure_cfg).settings,
                     secure_cfg.kafka.client_settings()):
        assert settings["security.protocol"] == "SASL_SSL"
        assert settings["sasl.password"] == "s3cr3t"
        assert settings["bootstrap.servers"].startswith("kafka-0")


def test_config_output_masks_secrets(secure_cfg) -> None:  # type: ignore[no-untyped-def]
    shown = json.dumps(masked(secure_cfg))
    assert "s3cr3t" not in shown
    assert "SCRAM-SHA-512" in shown and "***" in shown


def test_device_keys_come_from_key_file_not_messages(tmp_path: Path) -> None:
    from twinguard.operators.integrity.signatures import SIG_BAD, SIG_OK, KeyRing, KeyRingError

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"pump-1": "00" * 32}))
    ring = KeyRing.from_config(str(keys), "TWINGUARD_TEST_UNSET_ENV", allow_dev_key=False)
    sig = ring.sign("pump-1", b"payload")
    assert ring.check("pump-1", b"payload", sig) == SIG_OK
    assert ring.check("pump-1", b"payload!", sig) == SIG_BAD
    keys.write_text("not json")
    with pytest.raises(KeyRingError, match="expected JSON"):
        KeyRing.from_config(str(keys), "TWINGUARD_TEST_UNSET_ENV", allow_dev_key=False)


def test_without_keys_the_development_key_is_refused_unless_explicitly_allowed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from twinguard.operators.integrity.signatures import DEV_MASTER, KeyRing, KeyRingError

    monkeypatch.delenv("TWINGUARD_TEST_UNSET_ENV", raising=False)
    with pytest.raises(KeyRingError, match=r"no HMAC keys configured.*TWINGUARD_TEST_UNSET_ENV"):
        KeyRing.from_config("", "TWINGUARD_TEST_UNSET_ENV", allow_dev_key=False)
    dev = KeyRing.from_config("", "TWINGUARD_TEST_UNSET_ENV", allow_dev_key=True)
    assert dev.key("d") == KeyRing(DEV_MASTER).key("d")
    monkeypatch.setenv("TWINGUARD_TEST_UNSET_ENV", "fleet-secret")
    ring = KeyRing.from_config("", "TWINGUARD_TEST_UNSET_ENV", allow_dev_key=False)
    assert ring.key("d") != dev.key("d")


def test_run_refuses_to_start_without_keys_and_says_how_to_configure_them(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from twinguard.pipelines.cli import main

    monkeypatch.delenv("TWINGUARD_HMAC_MASTER", raising=False)
    # an unreachable broker: the refusal must come before Kafka is asked anything
    assert main(["run", "--brokers", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("twinguard run: error: no HMAC keys configured")
    assert "--insecure-dev-key" in err[0] and "TWINGUARD_HMAC_MASTER" in err[0]


def test_live_runtimes_bound_event_time_marks_and_offline_ones_do_not() -> None:
    from twinguard.pipelines.flow import Runtime

    cfg = load_config(env={}).replace(integrity={"insecure_dev_key": True})
    assert Runtime.from_config(cfg, live=True).engine.mark_lead_ms == cfg.pipeline.max_mark_lead_ms
    assert Runtime.from_config(cfg).engine.mark_lead_ms is None
