"""`twinguard archive`: windows, threats and feedback topics -> partitioned Parquet, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from twinguard.pipelines.config import Config

HELP = ("archive the windows (`run --emit-windows`), threats and feedback topics as Parquet under "
        "DIR/kind=<kind>/date=<YYYY-MM-DD>/, resuming from the offsets in DIR/manifest.json; the "
        "data `train --from-archive` learns from")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--out", required=True, metavar="DIR", help="archive directory (created; "
                   "an existing archive is resumed)")
    p.add_argument("--max-bytes", type=int, default=None, metavar="N",
                   help="keep the archive under N bytes: the oldest date partitions are dropped "
                   "first, logged (default: config archive.max_bytes; 0 = unbounded)")
    p.add_argument("--once", action="store_true",
                   help="stop once the records present at start are archived (default: follow "
                   "until SIGTERM/Ctrl-C)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="stop after this long (tests, demos)")


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.archive.service import serve

    return serve(cfg, Path(args.out), args.max_bytes, args.once, args.max_seconds)
