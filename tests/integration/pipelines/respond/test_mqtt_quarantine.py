"""A device publishing through a real Mosquitto is quarantined by an action and released by its TTL."""

from __future__ import annotations

from tests.support.mosquitto import Mosquitto
from tests.support.respond import (
    action,
    history,
    publish_actions,
    publish_twins,
    responding,
    results,
    wait_for,
)
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.local import free_port

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


def test_a_broker_that_is_down_fails_after_retries_while_others_are_served(executing: Config) -> None:
    dead_port = str(free_port())  # nothing listens there: the mqtt actuator is down
    cfg = executing.replace(respond={"mqtt": {**executing.respond.mqtt, "port": dead_port}})
    publish_twins(cfg, {DEVICE: "smart_meter", "thermostat-000001": "thermostat"})
    down, other = action(DEVICE, "quarantine"), action("thermostat-000001", "failsafe")
    with responding(cfg):
        publish_actions(cfg, [down, other])
        steps = wait_for("the quarantine to give up",
                         lambda: (h := history(cfg, down.id)) and h[-1].status == "failed" and h)
        served = results(cfg)[other.id]
    tries = [s for s in steps if s.status == "in_progress"]
    # each try is recorded before it runs, then with its error and when the next one is due
    assert [s.attempts for s in tries] == [1, 1, 2, 2, 3, 3, 4]
    assert [bool(s.retry_at) for s in tries] == [False, True] * 3 + [False]
    due = [s.retry_at - s.at for s in tries if s.retry_at]
    assert due == sorted(due)  # the backoff grows
    assert "Connection refused" in (steps[-1].error or "") and "gave up after 4" in steps[-1].reason
    assert served.status == "succeeded"  # the commands actuator kept serving
    assert served.executed_at is not None and served.executed_at < steps[-1].at
