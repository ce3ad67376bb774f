"""A credential lock on a real Mosquitto is revertible: the locked client cannot connect; the TTL's
release gives it a fresh password, kept for the operator only (the locked one stays dead)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support.mosquitto import Mosquitto
from tests.support.respond import action, history, publish_actions, publish_twins, responding, wait_for
from twinguard.pipelines.config import Config

DEVICE, PASSWORD = "smart_meter-000077", "device-secret"


def test_a_locked_client_is_refused_until_its_release_hands_the_operator_a_new_password(
        executing: Config, mosquitto: Mosquitto, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    cfg = executing.replace(respond={"mqtt": {**executing.respond.mqtt, "secrets_dir": str(vault)}})
    mosquitto.add_device(DEVICE, PASSWORD)
    assert mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.0}')
    publish_twins(cfg, {DEVICE: "smart_meter"})
    act = action(DEVICE, "lock_credentials")
    with responding(cfg):
        publish_actions(cfg, [act])
        locked = wait_for("the lock to be recorded",
                          lambda: (h := history(cfg, act.id)) and h[-1].status == "succeeded" and h[-1])
        assert not mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.1}')  # locked out
        assert not vault.exists() or not any(vault.iterdir())  # the lock's secret is kept nowhere
        released = wait_for("the TTL to release the lock", lambda: (h := history(cfg, act.id))
                            and h[-1].status == "reverted" and h[-1])
    assert locked.expires_at and "auto-reverts in 4 s" in locked.reason
    assert released.decided_by == "ttl" and released.detail["mqtt_client"] == DEVICE
    kept = Path(released.detail["secret_file"])
    assert kept.parent == vault and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.stat().st_mode) == 0o700
    secret = kept.read_text().strip()
    assert secret not in released.reason + str(released.detail)  # only its fingerprint is recorded
    assert not mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.2}')  # the stolen one stays dead
    assert mosquitto.publish(DEVICE, secret, '{"kwh": 1.3}')  # provisioned: it connects again
