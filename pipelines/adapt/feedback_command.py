"""`twinguard feedback THREAT_ID --verdict V`: an analyst verdict on a threat, to twinguard.feedback."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime

import msgspec

from twinguard.operators.feedback.table import BENIGN, SUPPRESSING, scope_key
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.adapt.lookup import device_firmware, find_threat, login_name
from twinguard.pipelines.config import Config
from twinguard.schemas.messages import Feedback

HELP = ("give an analyst verdict on a threat (twinguard.feedback): false_positive or benign "
        "suppresses that threat class for the device, its type or its cohort (type + firmware) "
        "until the TTL; true_positive is recorded (for retraining)")
VERDICTS = ("true_positive", "false_positive", "benign")
_TTL = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """`--ttl`: 90s, 15m, 12h, 7d or plain seconds -> milliseconds."""
    m = _TTL.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"--ttl {text!r}: expected a positive duration such as 90s, 15m, 12h or 7d")
    return int(float(m.group(1)) * _UNIT_S[m.group(2)] * 1000)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("threat_id", metavar="THREAT_ID", help="the threat's id (`twinguard threats`)")
    p.add_argument("--verdict", required=True, choices=VERDICTS)
    p.add_argument("--scope", choices=("device", "type", "cohort"), default="device",
                   help="what a suppression covers: the device (default), every device of its "
                   "type, or its cohort (its type with its current firmware)")
    p.add_argument("--note", default="", help="free text kept with the verdict")
    p.add_argument("--ttl", default=None, metavar="D",
                   help="how long the suppression lasts: 90s, 15m, 12h, 7d (default [feedback] "
                   "default_ttl_s)")
    p.add_argument("--analyst", default=None, help="who gives the verdict (default: login name)")
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")


def run(args: argparse.Namespace, cfg: Config) -> int:
    ttl_ms = parse_ttl(args.ttl) if args.ttl else int(cfg.feedback.default_ttl_s * 1000)
    if ttl_ms > cfg.feedback.max_ttl_s * 1000:
        raise ValueError(f"--ttl {args.ttl}: longer than [feedback] max_ttl_s "
                         f"({cfg.feedback.max_ttl_s:g} s)")
    print(f"looking {args.threat_id} up on {cfg.topics.threats} ...", file=sys.stderr, flush=True)
    ev = find_threat(cfg, args.threat_id)
    fw = device_firmware(cfg, ev.device_id) if args.scope == "cohort" else None
    if args.scope == "cohort" and not fw:
        raise ValueError(f"--scope cohort: device {ev.device_id} has no known firmware on "
                         f"{cfg.topics.twins}; use --scope type or device")
    now_ms = int(time.time() * 1000)
    fb = Feedback(threat_id=ev.id, verdict=args.verdict, analyst=args.analyst or login_name(),
                  ts=now_ms, threat=ev.threat, note=args.note, scope=args.scope, ttl_ms=ttl_ms,
                  device_id=ev.device_id, device_type=ev.device_type, fw=fw,
                  detectors=list(ev.detectors), model_version=ev.model_version,
                  window_end=ev.window_end)
    errors: list[str] = []
    p = producer(cfg.kafka.client_settings())
    produce_all(p, cfg.topics.feedback, [(ev.id.encode(), msgspec.json.encode(fb))], errors.append)
    if p.flush(30) != 0 or errors:
        raise RuntimeError(f"feedback not written to {cfg.topics.feedback}: "
                           f"{errors[0] if errors else 'broker did not confirm within 30 s'}")
    print(describe(fb))
    return 0


def describe(fb: Feedback) -> str:
    """One line: what the verdict does."""
    if fb.verdict not in SUPPRESSING:
        return f"feedback on {fb.threat_id}: {fb.verdict} recorded ({fb.threat} on {fb.device_id})"
    until = datetime.fromtimestamp((fb.ts + fb.ttl_ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    what = scope_key(fb.scope, fb.device_id or "", fb.device_type or "", fb.fw)
    relearn = ("; the device's baseline is re-learned from its next window"
               if fb.verdict in BENIGN and fb.scope == "device" else "")
    return (f"feedback on {fb.threat_id}: {fb.verdict}: {fb.threat} suppressed for {fb.scope} "
            f"{what} until {until}{relearn}")

