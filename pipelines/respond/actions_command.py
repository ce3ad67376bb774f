"""`twinguard actions list|approve|reject|revert|confirm`: the analyst's side of the response loop."""

from __future__ import annotations

import argparse
import getpass
import time

import msgspec

from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.config import Config
from twinguard.pipelines.text import printable
from twinguard.schemas.messages import ActionDecision, ActionResult

HELP = ("list response actions and their state, or approve, reject, revert or confirm one "
        "(confirm keeps a containment past its TTL)")
# what each decision needs the action's latest record to be
NEEDS = {"approve": ("pending",), "reject": ("pending",), "revert": ("succeeded",),
         "confirm": ("succeeded",)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("verb", choices=["list", *NEEDS], help="list, or a decision on one action")
    p.add_argument("action_id", nargs="?", metavar="ID", help="the action id (decisions)")
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--analyst", default=None, help="who decides (default: the login name)")
    p.add_argument("--note", default="", help="why (kept in the result record)")
    p.add_argument("--status", default=None, help="list: only this status (e.g. pending)")
    p.add_argument("--device", default=None, help="list: only this device")
    p.add_argument("--wait", type=float, default=10.0, metavar="S",
                   help="decisions: wait this long for `respond` to record the outcome (0 = don't)")


def latest(cfg: Config) -> dict[str, ActionResult]:
    """The latest result record per action id."""
    from twinguard.pipelines.respond.service import read_results

    state: dict[str, ActionResult] = {}
    for rec in read_results(cfg.kafka.client_settings(), cfg.topics.action_results):
        state[rec.action_id] = rec
    return state


def run(args: argparse.Namespace, cfg: Config) -> int:
    state = latest(cfg)
    if args.verb == "list":
        rows = [r for r in state.values() if (args.status in (None, r.status))
                and (args.device in (None, r.request.device_id))]
        for r in sorted(rows, key=lambda r: r.at):
            until = f" until {time.strftime('%H:%M:%S', time.gmtime(r.expires_at / 1000))}Z" \
                if r.expires_at else ""
            print(printable(f"{r.action_id}  {r.status:<11} {r.performs:<16} {r.request.target:<24} "
                            f"{r.actuator or '-':<8} {r.request.threat or '-':<14}{until}  "
                            f"{r.reason.split('; ')[-1]}"))
        print(f"{len(rows)} actions")
        return 0
    if not args.action_id:
        raise ValueError(f"`twinguard actions {args.verb}` needs an action id (see `actions list`)")
    rec = state.get(args.action_id)
    if rec is None:
        raise ValueError(f"no action {args.action_id} on {cfg.topics.action_results}: "
                         "see `twinguard actions list`")
    if rec.status not in NEEDS[args.verb] or (args.verb in ("approve", "reject") and rec.hold == "rate"):
        raise ValueError(f"cannot {args.verb} {args.action_id}: it is {rec.status}"
                         f"{' (' + rec.hold + ')' if rec.hold else ''}")
    decision = ActionDecision(action_id=args.action_id, decision=args.verb,
                              analyst=args.analyst or getpass.getuser(), at=int(time.time() * 1000),
                              note=args.note)
    body = msgspec.json.encode(decision)
    try:  # what `respond` would dead-letter is refused here, where the analyst can fix it
        msgspec.json.decode(body, type=ActionDecision)
    except msgspec.ValidationError as e:
        raise ValueError(f"decision refused: {e} (--analyst: letters, digits, . _ @ + -)") from None
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, cfg.topics.action_decisions, [(args.action_id.encode(), body)], errors.append)
    if p.flush(30) or errors:
        raise RuntimeError(f"decision not acknowledged by Kafka: {'; '.join(errors) or 'timed out'}")
    print(f"{args.verb} sent for {args.action_id}")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        now = latest(cfg).get(args.action_id)
        if now is not None and now.at > rec.at and now.status != "in_progress":
            print(printable(f"{args.action_id}: {now.status} — {now.reason.split('; ')[-1]}"
                            + (f" (error: {now.error})" if now.error else "")))
            return 0 if now.status != "failed" else 1
        time.sleep(0.5)
    if args.wait:
        print(f"no outcome recorded within {args.wait:g} s: is `twinguard respond` running?")
        return 1
    return 0
