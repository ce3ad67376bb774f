"""After a restart the Responder's state comes from result records: an interrupted step is failed,
never repeated; approvals, retries and containment TTLs carry on."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from tests.support.respond import action
from twinguard.pipelines.respond.responder import Responder, Source
from twinguard.pipelines.respond.settings import RespondConfig
from twinguard.schemas.device_types import load_device_types
from twinguard.schemas.messages import ActionResult

NOW = 1_800_000_000_000


class Records:
    """Collects what the Responder writes."""

    def __init__(self) -> None:
        self.results: list[ActionResult] = []
        self.dead: list[str] = []

    def result(self, rec: ActionResult, durable: bool) -> None:
        self.results.append(rec)

    def dead_letter(self, src: Source, value: bytes, reason: str) -> None:
        self.dead.append(reason)


class NoTwins:
    def type_of(self, device_id: str) -> str | None:
        return None

    def sizes(self) -> Mapping[str, int]:
        return {}


def _rec(name: str, status: str, **kw: object) -> ActionResult:
    a = action(f"smart_meter-{name}", "quarantine")
    return ActionResult(action_id=a.id, status=status, step=str(kw.pop("step", "execute")),
                        reason="r", at=NOW, request=a, performs="quarantine", actuator="mqtt",
                        device_type="smart_meter", dry_run=False, **kw)  # type: ignore[arg-type]


def test_restart_fails_interrupted_steps_and_keeps_the_rest() -> None:
    out = Records()
    r = Responder(RespondConfig(), False, {}, {}, load_device_types(), NoTwins(), out, lambda: NOW)
    interrupted = _rec("1", "in_progress", attempts=1, executed_at=NOW)
    retrying = _rec("2", "in_progress", attempts=1, retry_at=NOW + 500, error="refused")
    waiting = _rec("3", "pending", step="decide", hold="approval")
    contained = _rec("4", "succeeded", expires_at=NOW + 60_000, executed_at=NOW)
    old = msgspec.structs.replace(contained, status="in_progress")  # an earlier record of the same id
    r.restore([interrupted, retrying, old, contained, waiting])
    assert [(x.action_id, x.status) for x in out.results] == [(interrupted.action_id, "failed")]
    assert "interrupted" in (out.results[0].error or "") and "not repeated" in (out.results[0].error or "")
    assert r.state[waiting.action_id].status == "pending"
    assert r.active == {retrying.action_id, contained.action_id}  # the tick resumes them
    assert {a.device_id for a in r.acted} == {"smart_meter-1", "smart_meter-4"}  # the guard remembers
    r.on_action(msgspec.json.encode(contained.request), Source("actions", 0, 9, None))
    assert r.counts["duplicates"] == 1 and len(out.results) == 1  # a replayed action does nothing


def test_restart_keeps_the_rate_limits_spent_budget() -> None:
    """Two starts of a 2/min actuator 10 s before the restart: a third waits until the bucket has
    refilled one start (30 s after the first), as it would have without the restart."""
    cfg = RespondConfig(rate_per_min={"mqtt": "2"})
    now = [NOW]
    r = Responder(cfg, False, {}, {}, load_device_types(), NoTwins(), Records(), lambda: now[0])
    r.restore([_rec(str(i), "succeeded", executed_at=NOW - 10_000, expires_at=NOW + 60_000)
               for i in (1, 2)])
    assert not r.rates.take("mqtt", NOW / 1000)  # spent: a fresh bucket would have said yes
    assert not r.rates.take("mqtt", (NOW + 19_000) / 1000)
    assert r.rates.take("mqtt", (NOW + 20_500) / 1000)  # 30 s after the starts: one start back
