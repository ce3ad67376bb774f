"""Safety limits: the blast-radius guard (devices acted on per window) and per-actuator rate limits."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Acted:
    """A device an execution started on, and when."""

    device_id: str
    device_type: str | None
    at_ms: int


@dataclass(frozen=True)
class BlastRadiusGuard:
    """No more than `max_devices` devices, or `max_share` of a type's fleet (at least one), acted on
    within `window_ms`; an action beyond that waits for an analyst."""

    max_devices: int
    max_share: float
    window_ms: int

    def refuse(self, device_id: str, device_type: str | None, acted: Iterable[Acted],
               fleet: Mapping[str, int], now_ms: int) -> str | None:
        """Why this device may not be acted on now, or None when it may."""
        recent = [a for a in acted if a.at_ms > now_ms - self.window_ms]
        devices = {a.device_id for a in recent}
        if device_id in devices:
            return None  # already acted on: a second action on it widens nothing
        minutes = self.window_ms / 60000
        if len(devices) + 1 > self.max_devices:
            return (f"blast-radius guard: {len(devices)} devices already acted on within "
                    f"{minutes:g} min (limit {self.max_devices}); approve to act on more")
        size = fleet.get(device_type or "", 0)
        if device_type and size:
            same = {a.device_id for a in recent if a.device_type == device_type}
            allowed = max(1, math.floor(self.max_share * size))
            if len(same) + 1 > allowed:
                return (f"blast-radius guard: {len(same)} of {size} {device_type} devices already "
                        f"acted on within {minutes:g} min (limit {self.max_share:.0%} = {allowed}); "
                        "approve to act on more")
        return None


@dataclass
class RateLimiter:
    """Token bucket per actuator: `per_min` starts per minute, bursts up to that many."""

    per_min: Mapping[str, float]
    _tokens: dict[str, float] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)

    def replay(self, starts: Iterable[tuple[int, str]]) -> None:
        """Rebuild the buckets after a restart from the starts the results topic recorded
        ((executed_at ms, actuator), any order): a bucket refills within a minute, so replaying
        them from full buckets gives the budget the stopped service had."""
        for at_ms, actuator in sorted(starts):
            self.take(actuator, at_ms / 1000)

    def take(self, actuator: str, now_s: float) -> bool:
        """Use one start of `actuator`'s budget if one is left."""
        rate = self.per_min.get(actuator)
        if rate is None:
            return True
        tokens = self._tokens.get(actuator, rate)
        tokens = min(rate, tokens + (now_s - self._last.get(actuator, now_s)) * rate / 60.0)
        self._last[actuator] = now_s
        if tokens >= 1.0:
            self._tokens[actuator] = tokens - 1.0
            return True
        self._tokens[actuator] = tokens
        return False
