"""A device publishing through a real Mosquitto is quarantined by an action and released by its TTL."""

from __future__ import annotations

from tests.support.mosquitto import Mosquitto
from tests.support.respond import action, history, publish_actions, publish_twins, responding, wait_for
from twinguard.pipelines.config import Config

DEVICE, PASSWORD = "smart_meter-000042", "device-secret"


def test_quarantine_cuts_the_device_off_until_its_ttl_expires(executing: Config,
                                                               mosquitto: Mosquitto) -> None:
    mosquitto.add_device(DEVICE, PASSWORD)
    assert mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.0}')  # the device's telemetry flows
    publish_twins(executing, {DEVICE: "smart_meter"})
    act = action(DEVICE, "quarantine")
    with responding(executing):
        publish_actions(executing, [act])
        wait_for("the quarantined device to be refused",
                 lambda: not mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.1}'), timeout_s=60)
        wait_for("the TTL to release the device",
                 lambda: mosquitto.publish(DEVICE, PASSWORD, '{"kwh": 1.2}'), timeout_s=60)
        steps = wait_for("the revert to be recorded",
                         lambda: (h := history(executing, act.id)) and h[-1].status == "reverted" and h)
    assert [s.status for s in steps] == ["in_progress", "succeeded", "in_progress", "reverted"]
    done = steps[1]
    assert done.performs == "quarantine" and done.actuator == "mqtt" and done.expires_at
    assert done.detail["mqtt_client"] == DEVICE
    assert "tier auto" in done.reason and "auto-reverts in 4 s" in done.reason
    assert steps[-1].decided_by == "ttl" and "TTL expired" in steps[-1].reason
