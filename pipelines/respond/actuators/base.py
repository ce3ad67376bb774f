"""The actuator interface: execute or revert one step; raise ActuatorError saying whether a retry helps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from twinguard.schemas.messages import Action


class ActuatorError(RuntimeError):
    """A step did not take effect; `retryable` = the actuator was unreachable, so trying later may work."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Step:
    """What an actuator needs to act: the request plus the device type's [response] settings."""

    request: Action
    action: str  # may differ from request.action: a life-critical quarantine becomes a failsafe
    device_type: str | None
    safe_state: str | None = None
    setpoints: dict[str, float] = field(default_factory=dict)


class Actuator(Protocol):
    """Executes and reverts steps; returns what it did as short key/value detail for the result."""

    name: str

    def execute(self, step: Step) -> dict[str, str]: ...

    def revert(self, step: Step) -> dict[str, str]: ...

    def reverts(self, action: str) -> bool:
        """Whether `revert` can undo this action (a containment with a TTL)."""
        ...

    def close(self) -> None: ...
