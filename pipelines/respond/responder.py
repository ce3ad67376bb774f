"""The response state machine: every action and analyst decision becomes explained result records.

An action id's latest ActionResult is its whole state. A step is recorded `in_progress` durably
before its actuator is called, so after a crash an interrupted step is marked failed, never repeated:
nothing executes twice. TTL reverts, retries and rate-limited starts resume from the records.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import msgspec

from twinguard.pipelines.respond.actuators.base import Actuator, ActuatorError, Step
from twinguard.pipelines.respond.guard import Acted, BlastRadiusGuard, RateLimiter
from twinguard.pipelines.respond.policy import CONTAINMENTS, plan
from twinguard.pipelines.respond.settings import RespondConfig
from twinguard.schemas.device_types import DeviceTypeTable
from twinguard.schemas.messages import Action, ActionDecision, ActionResult

log = logging.getLogger(__name__)
M = TypeVar("M")
ACTUATORS = ("mqtt", "commands", "webhook")
INTERRUPTED = ("interrupted: respond stopped during this step, so its outcome is unknown; it is not "
               "repeated (an action never runs twice): check the device, then revert or re-issue by hand")


@dataclass(frozen=True)
class Source:
    """Where an input message came from, for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


class Outbox(Protocol):
    """Where records go: results (durable = acknowledged before returning) and dead letters."""

    def result(self, rec: ActionResult, durable: bool) -> None: ...

    def dead_letter(self, src: Source, value: bytes, reason: str) -> None: ...


class Fleet(Protocol):
    """Device types and fleet sizes as the twins topic knows them."""

    def type_of(self, device_id: str) -> str | None: ...

    def sizes(self) -> Mapping[str, int]: ...


class Responder:
    """Decides, executes, retries and reverts actions; `tick` drives everything time-based."""

    def __init__(self, cfg: RespondConfig, dry_run: bool, actuators: Mapping[str, Actuator],
                 unavailable: Mapping[str, str], types: DeviceTypeTable, fleet: Fleet,
                 out: Outbox, clock: Callable[[], int]) -> None:
        self.cfg, self.dry_run, self.actuators = cfg, dry_run, actuators
        self.unavailable, self.types, self.fleet, self.out, self.clock = unavailable, types, fleet, out, clock
        self.guard = BlastRadiusGuard(cfg.guard_max_devices, cfg.guard_max_type_share,
                                      int(cfg.guard_window_s * 1000))
        self.rates = RateLimiter({k: float(v) for k, v in cfg.rate_per_min.items()})
        self.state: dict[str, ActionResult] = {}
        self.acted: list[Acted] = []
        self.active: set[str] = set()  # ids a tick must look at (retry, rate hold, TTL)
        self.counts: Counter[str] = Counter()
        self._actions = msgspec.json.Decoder(Action)
        self._decisions = msgspec.json.Decoder(ActionDecision)

    # --- restart ---------------------------------------------------------------------------------
    def restore(self, records: Iterable[ActionResult]) -> None:
        """Rebuild from the results topic (latest record per action id wins); interrupted steps fail."""
        latest: dict[str, ActionResult] = {}
        for rec in records:
            latest[rec.action_id] = rec
        for rec in latest.values():
            self.state[rec.action_id] = rec
            if rec.executed_at is not None and not rec.dry_run:
                self.acted.append(Acted(rec.request.device_id, rec.device_type, rec.executed_at))
            if rec.status == "in_progress" and rec.retry_at is None:
                self._emit(msgspec.structs.replace(rec, status="failed", error=INTERRUPTED,
                                                   at=self.clock()), durable=False)
            else:
                self._track(rec)
        # the rate limits' budgets, like the guard's window, come back from the recorded starts
        self.rates.replay((r.executed_at, r.actuator) for r in latest.values()
                          if r.executed_at is not None and not r.dry_run)
        self.counts["restored"] = len(latest)

    # --- inputs ----------------------------------------------------------------------------------
    def on_action(self, raw: bytes, src: Source) -> None:
        """A new action from the actions topic: plan it, then hold, skip or execute it."""
        self.counts["actions"] += 1
        action = self._decode(self._actions, raw, src, "action")
        if action is None:
            return
        if action.id in self.state:
            self.counts["duplicates"] += 1  # a replay or a re-emitted action: it already has a result
            return
        if action.action not in self.cfg.routes:
            self._dead(src, raw, f"unknown action '{action.action}' (known: "
                       f"{', '.join(sorted(self.cfg.routes))}): add it to [respond.routes]")
            return
        dtype = self.fleet.type_of(action.device_id)
        p = plan(action.action, action.tier, dtype, self.cfg, action.threat)
        rec = ActionResult(action_id=action.id, status="pending", step="decide", reason=p.reason,
                           at=self.clock(), request=action, performs=p.action, actuator=p.actuator,
                           device_type=dtype, dry_run=self.dry_run or action.dry_run)
        if p.actuator not in ACTUATORS:
            self._emit(self._with(rec, "skipped", f"no actuator performs {p.action} ([respond.routes] "
                                             f"{p.action} = {p.actuator or 'unset'})"), durable=False)
        elif p.tier == "approval":
            self._emit(self._with(rec, "pending", f"waits for an analyst: twinguard actions approve "
                                             f"{action.id}", hold="approval"), durable=False)
        else:
            self._start(rec, approved=False)

    def on_decision(self, raw: bytes, src: Source) -> None:
        """An analyst's approve, reject, revert or confirm of one action."""
        self.counts["decisions"] += 1
        d = self._decode(self._decisions, raw, src, "decision")
        if d is None:
            return
        rec = self.state.get(d.action_id)
        if rec is None:
            self._dead(src, raw, f"{d.decision}: no action {d.action_id} has been seen")
            return
        by, note = d.analyst, f" ({d.note})" if d.note else ""
        if d.decision in ("approve", "reject") and rec.status == "pending" and rec.hold != "rate":
            if d.decision == "reject":
                self._emit(self._with(rec, "cancelled", f"rejected by {by}{note}", decided_by=by), False)
            else:
                self._start(self._with(rec, "pending", f"approved by {by}{note}", decided_by=by),
                            approved=True)
        elif d.decision == "revert" and rec.status == "succeeded" and self._reverts(rec):
            self._revert(rec, by, f"revert requested by {by}{note}")
        elif d.decision == "confirm" and rec.status == "succeeded" and rec.expires_at is not None:
            self._emit(msgspec.structs.replace(
                self._with(rec, "succeeded", f"confirmed by {by}{note}: kept until reverted by hand",
                      decided_by=by), confirmed=True, expires_at=None), durable=False)
        else:
            self._dead(src, raw, f"cannot {d.decision} action {d.action_id}: it is {rec.status}"
                       f"{' (' + rec.hold + ')' if rec.hold else ''} ({rec.performs})")

    def tick(self) -> None:
        """Retries that are due, rate-limited starts, and containments whose TTL expired."""
        now = self.clock()
        self.acted = [a for a in self.acted if a.at_ms > now - self.guard.window_ms]
        for action_id in sorted(self.active):
            rec = self.state[action_id]
            if rec.status == "in_progress" and rec.retry_at is not None and rec.retry_at <= now:
                nxt = msgspec.structs.replace(rec, attempts=rec.attempts + 1, retry_at=None, at=now)
                self._emit(nxt, durable=True)
                self._attempt(nxt)
            elif rec.status == "pending" and rec.hold == "rate":
                self._start(rec, approved=rec.decided_by != "policy")
            elif (rec.status == "succeeded" and rec.expires_at is not None and not rec.confirmed
                  and rec.expires_at <= now):
                self._revert(rec, "ttl", "containment TTL expired without an analyst's confirm: "
                             "auto-revert")

    # --- steps -----------------------------------------------------------------------------------
    def _start(self, rec: ActionResult, approved: bool) -> None:
        now = self.clock()
        if not approved:
            refusal = self.guard.refuse(rec.request.device_id, rec.device_type, self.acted,
                                        self.fleet.sizes(), now)
            if refusal:
                self._emit(self._with(rec, "pending", f"{refusal}: twinguard actions approve "
                                                 f"{rec.action_id}", hold="guard"), durable=False)
                return
        if rec.dry_run:
            self._emit(self._with(rec, "skipped", f"dry run ([response] dry_run or the action's "
                                             f"dry_run): would {rec.performs} {rec.request.target} "
                                             f"via {rec.actuator}"), durable=False)
            return
        if rec.actuator not in self.actuators:
            why = self.unavailable.get(rec.actuator, f"actuator {rec.actuator} is not configured")
            self._emit(self._with(rec, "skipped", f"cannot {rec.performs}: {why}"), durable=False)
            return
        if not self.rates.take(rec.actuator, now / 1000):
            if rec.hold != "rate":
                self._emit(self._with(rec, "pending", f"rate limit of {rec.actuator} "
                                 f"({self.cfg.rate_per_min.get(rec.actuator)}/min): starts when "
                                 "its budget allows", hold="rate"), durable=False)
            return
        self.acted.append(Acted(rec.request.device_id, rec.device_type, now))
        started = msgspec.structs.replace(
            self._with(rec, "in_progress", f"executing via {rec.actuator}"), step="execute", attempts=1,
            executed_at=now, error=None, retry_at=None)
        self._emit(started, durable=True)  # recorded before it happens: never executed twice
        self._attempt(started)

    def _revert(self, rec: ActionResult, by: str, why: str) -> None:
        started = msgspec.structs.replace(self._with(rec, "in_progress", why, decided_by=by),
                                          step="revert", attempts=1, error=None, retry_at=None)
        self._emit(started, durable=True)
        self._attempt(started)

    def _attempt(self, rec: ActionResult) -> None:
        actuator = self.actuators.get(rec.actuator)
        try:
            if actuator is None:
                raise ActuatorError(self.unavailable.get(rec.actuator, "actuator not configured"),
                                    retryable=False)
            step = self._step(rec)
            detail = actuator.execute(step) if rec.step == "execute" else actuator.revert(step)
        except ActuatorError as e:
            now = self.clock()
            if e.retryable and rec.attempts < self.cfg.retry_attempts:
                delay = self.cfg.retry_backoff_s * 2 ** (rec.attempts - 1)
                self._emit(msgspec.structs.replace(rec, error=str(e), at=now,
                                                   retry_at=now + int(delay * 1000)), durable=False)
            else:
                self._emit(msgspec.structs.replace(
                    self._with(rec, "failed", f"{rec.step} gave up after {rec.attempts} attempt(s)"),
                    error=str(e)), durable=False)
            return
        if rec.step == "execute":
            ttl = (rec.performs in CONTAINMENTS and actuator is not None
                   and actuator.reverts(rec.performs))
            done = self._with(rec, "succeeded", f"executed via {rec.actuator}"
                         + (f"; auto-reverts in {self.cfg.ttl_s:g} s unless confirmed" if ttl else ""))
            expires = self.clock() + int(self.cfg.ttl_s * 1000) if ttl else None
            self._emit(msgspec.structs.replace(done, detail=detail, error=None, expires_at=expires),
                       durable=False)
        else:
            self._emit(msgspec.structs.replace(self._with(rec, "reverted", f"reverted via {rec.actuator}"),
                                               detail=detail, error=None, expires_at=None), False)

    def _step(self, rec: ActionResult) -> Step:
        response = {}
        if rec.device_type in self.types.index:
            response = self.types.types[self.types.index[rec.device_type]].response
        safe = response.get("safe_state")
        setpoints = {str(k): float(v) for k, v in response.get("setpoints", {}).items()}
        return Step(rec.request, rec.performs, rec.device_type,
                    str(safe) if safe is not None else None, setpoints)

    def _reverts(self, rec: ActionResult) -> bool:
        actuator = self.actuators.get(rec.actuator)
        return actuator is not None and actuator.reverts(rec.performs)

    # --- bookkeeping -----------------------------------------------------------------------------
    def _emit(self, rec: ActionResult, durable: bool) -> None:
        self.state[rec.action_id] = rec
        self._track(rec)
        self.counts[rec.status] += 1
        self.out.result(rec, durable)

    def _track(self, rec: ActionResult) -> None:
        waiting = ((rec.status == "in_progress" and rec.retry_at is not None)
                   or (rec.status == "pending" and rec.hold == "rate")
                   or (rec.status == "succeeded" and rec.expires_at is not None and not rec.confirmed))
        if waiting:
            self.active.add(rec.action_id)
        else:
            self.active.discard(rec.action_id)

    def _decode(self, decoder: msgspec.json.Decoder[M], raw: bytes, src: Source, what: str) -> M | None:
        """The message, or None after dead-lettering it with what is wrong."""
        try:
            return decoder.decode(raw)
        except msgspec.DecodeError as e:
            self._dead(src, raw, f"malformed {what}: {e}")
            return None

    def _dead(self, src: Source, raw: bytes, reason: str) -> None:
        self.counts["dead_lettered"] += 1
        self.out.dead_letter(src, raw, reason)

    def _with(self, rec: ActionResult, status: str, why: str, hold: str | None = None,
              decided_by: str | None = None) -> ActionResult:
        """The next record: new status, the reason extended, hold replaced."""
        return msgspec.structs.replace(rec, status=status, reason=f"{rec.reason}; {why}", hold=hold,
                                       decided_by=decided_by or rec.decided_by,
                                       at=max(self.clock(), rec.at))
