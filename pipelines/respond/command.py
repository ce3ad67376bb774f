"""`twinguard respond`: execute the actions topic through actuators, exactly once per action id."""

from __future__ import annotations

import argparse

from twinguard.pipelines.config import Config

HELP = ("execute actions (twinguard.actions) through actuators (Mosquitto, the commands topic, a "
        "webhook) once per action id, with approvals, a blast-radius guard, rate limits and TTL "
        "auto-revert; results on twinguard.action_results (dry run until [response] dry_run = false)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--execute", action="store_true",
                   help="act for real: same as [response] dry_run = false (actions issued as dry "
                   "runs by the dataflow still only get a `skipped` record)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="stop after this long (tests, demos); default: until SIGTERM/Ctrl-C")


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.respond.service import serve

    if args.execute:
        cfg = cfg.replace(response={"dry_run": False})
    return serve(cfg, max_seconds=args.max_seconds)
