"""Kafka command-topic actuator: one Command per step, keyed by device, for the device's gateway."""

from __future__ import annotations

from typing import Any

import msgspec
from confluent_kafka import Producer

from twinguard.operators.detect.policy import output_id
from twinguard.pipelines.respond.actuators.base import ActuatorError, Step
from twinguard.pipelines.respond.clock import now_ms
from twinguard.schemas.messages import Command

# undo of each revertible command (a fail-safe is lifted by an analyst's revert, never by a TTL)
RELEASE = {"rate_limit": "release_rate_limit", "block_ip": "unblock_ip", "failsafe": "release_failsafe"}


class CommandTopicActuator:
    """Produces to the commands topic and waits for the broker's acknowledgement."""

    name = "commands"

    def __init__(self, settings: dict[str, Any], topic: str, timeout_s: float = 10.0) -> None:
        self.topic, self.timeout_s = topic, timeout_s
        self._producer = Producer({**settings, "acks": "all", "enable.idempotence": True,
                                   "message.timeout.ms": int(timeout_s * 1000)})
        self._enc = msgspec.json.Encoder()

    def reverts(self, action: str) -> bool:
        return action in RELEASE

    def execute(self, step: Step) -> dict[str, str]:
        return self._send(step, step.action)

    def revert(self, step: Step) -> dict[str, str]:
        undo = RELEASE.get(step.action)
        if undo is None:
            raise ActuatorError(f"'{step.action}' has no release command", retryable=False)
        return self._send(step, undo)

    def _send(self, step: Step, command: str) -> dict[str, str]:
        req = step.request
        cmd = Command(command_id=output_id(req.id, command), action_id=req.id,
                      device_id=req.device_id, command=command, target=req.target,
                      issued_at=now_ms(), safe_state=step.safe_state if command == "failsafe" else None,
                      setpoints=step.setpoints if command == "failsafe" else {})
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err.str())
        try:
            self._producer.produce(self.topic, self._enc.encode(cmd), req.device_id.encode(),
                                   on_delivery=delivered)
        except BufferError:
            raise ActuatorError("command producer queue is full", retryable=True) from None
        if self._producer.flush(self.timeout_s) or errors:
            raise ActuatorError(f"command to {self.topic} not acknowledged: "
                                f"{'; '.join(errors) or 'timed out'}", retryable=True)
        return {"command": command, "command_id": cmd.command_id, "topic": self.topic}

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
