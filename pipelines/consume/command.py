"""`twinguard threats`: the threats topic as a table or JSON lines, de-duplicated, optionally followed."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime

import msgspec

from twinguard.pipelines.config import Config
from twinguard.pipelines.text import printable
from twinguard.schemas.features import SEVERITIES, THREAT_CLASSES
from twinguard.schemas.messages import ThreatEvent

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = (("detected (UTC)", 19), ("severity", 8), ("threat", 20), ("device", 24), ("type", 14),
           ("score", 5), ("id", 24))


def parse_since(text: str, now_ms: int) -> int:
    """`--since`: an age (90s, 15m, 2h, 7d), an ISO-8601 time (UTC unless it says otherwise) or
    epoch milliseconds -> epoch milliseconds."""
    ago = _AGO.match(text.strip())
    if ago:
        return now_ms - int(float(ago.group(1)) * _UNIT_S[ago.group(2)] * 1000)
    if text.strip().isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = (f"--since {text!r}: expected an age (15m, 2h, 7d), an ISO time "
               "(2026-12-05T23:00:00Z) or epoch milliseconds")
        raise ValueError(msg) from None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new threats as they arrive (Ctrl-C stops)")
    p.add_argument("--severity", choices=SEVERITIES, help="only this severity or higher")
    p.add_argument("--class", dest="threat", choices=THREAT_CLASSES, metavar="CLASS",
                   help=f"only this threat class ({', '.join(THREAT_CLASSES)})")
    p.add_argument("--device", help="only this device id")
    p.add_argument("--since", metavar="T", help="only threats detected since T: an age (15m, 2h, "
                   "7d), an ISO time (UTC unless given) or epoch ms")
    p.add_argument("--json", action="store_true", help="JSON lines (the threats schema) instead "
                   "of a table")


def header() -> str:
    head = "  ".join(f"{name:<{width}}" for name, width in COLUMNS) + "  top reason"
    return f"{head}\n{'-' * len(head)}"


def row(ev: ThreatEvent) -> str:
    """One table line; every string from the topic escaped (`printable`)."""
    when = datetime.fromtimestamp(ev.detected_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    cells = (when, printable(ev.severity), printable(ev.threat), printable(ev.device_id),
             printable(ev.device_type), f"{ev.score:.2f}", printable(ev.id))
    line = "  ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True))
    return f"{line}  {printable(ev.reasons[0]) if ev.reasons else '-'}"


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.consume.reader import ThreatFilter, threats

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    match = ThreatFilter(args.severity, args.threat, args.device,
                         parse_since(args.since, now_ms) if args.since else None)
    reader = threats(cfg, match=match, follow=args.follow)
    shown = 0
    try:
        for ev in reader:
            if shown == 0 and not args.json:
                print(header())
            shown += 1
            print(msgspec.json.encode(ev).decode() if args.json else row(ev), flush=args.follow)
    except KeyboardInterrupt:
        pass
    s = reader.stats
    print(f"{shown} threats shown from {cfg.topics.threats} ({s.records} records read, "
          f"{s.duplicates} duplicates, {s.filtered_out} filtered out, {s.unreadable} unreadable)",
          file=sys.stderr)
    return 0
