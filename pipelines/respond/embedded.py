"""The response loop without Kafka or brokers, for `twinguard demo`: the demo's actions go through
the same Responder (policy, guard, rate limits) against simulated actuators that only record."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from twinguard.operators.twin.response import fold
from twinguard.pipelines.config import Config
from twinguard.pipelines.respond.actuators.base import Actuator, Step
from twinguard.pipelines.respond.clock import now_ms
from twinguard.pipelines.respond.responder import ACTUATORS, Responder, Source
from twinguard.schemas.device_types import load_device_types
from twinguard.schemas.messages import ActionResult, ResponseState

REVERSIBLE = frozenset({"quarantine", "lock_credentials", "rate_limit", "block_ip", "failsafe",
                        "suspend_user"})


class SimulatedActuator:
    """Stands in for a broker, gateway or SOAR tool: records each device's effects in memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.effects: dict[str, set[str]] = {}

    def reverts(self, action: str) -> bool:
        return action in REVERSIBLE

    def execute(self, step: Step) -> dict[str, str]:
        self.effects.setdefault(step.request.target, set()).add(step.action)
        return {"simulated": self.name, "effect": f"{step.action} on {step.request.target}"}

    def revert(self, step: Step) -> dict[str, str]:
        self.effects.get(step.request.target, set()).discard(step.action)
        return {"simulated": self.name, "effect": f"released {step.action}"}

    def close(self) -> None:
        pass


class _FileOutbox:
    def __init__(self, out: Path) -> None:
        self._results = (out / "action_results.jsonl").open("wb")
        self._dead: list[str] = []

    def result(self, rec: ActionResult, durable: bool) -> None:
        self._results.write(msgspec.json.encode(rec) + b"\n")

    def dead_letter(self, src: Source, value: bytes, reason: str) -> None:
        self._dead.append(reason)

    def close(self) -> list[str]:
        self._results.close()
        return self._dead


class _Twins:
    def __init__(self, twins: Iterable[Mapping[str, Any]]) -> None:
        self._types = {str(t["device_id"]): str(t["device_type"]) for t in twins}
        self._sizes = Counter(self._types.values())

    def type_of(self, device_id: str) -> str | None:
        return self._types.get(device_id)

    def sizes(self) -> Mapping[str, int]:
        return self._sizes


def respond_offline(cfg: Config, actions: list[dict[str, Any]], twins: Iterable[Mapping[str, Any]],
                    out: Path) -> Counter[str]:
    """Every action (as if issued with dry run off) through the Responder; the final status counts
    and `devices_contained`: devices whose twin would show a response state (the dataflow's own
    fold of the results). Writes out/action_results.jsonl."""
    actuators: dict[str, Actuator] = {name: SimulatedActuator(name) for name in ACTUATORS}
    outbox = _FileOutbox(out)
    r = Responder(cfg.respond, False, actuators, {}, load_device_types(), _Twins(twins), outbox, now_ms)
    for i, a in enumerate(actions):
        r.on_action(json.dumps({**a, "dry_run": False}).encode(), Source("actions", 0, i, None))
    dead = outbox.close()
    final = Counter(s.status if s.status != "pending" else f"pending ({s.hold})" for s in r.state.values())
    final["dead_lettered"] = len(dead)
    contained: dict[str, dict[str, ResponseState]] = {}
    for rec in r.state.values():
        fold(contained.setdefault(rec.request.device_id, {}), rec)
    final["devices_contained"] = sum(1 for entries in contained.values() if entries)
    return final
