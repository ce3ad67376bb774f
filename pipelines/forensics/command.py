"""`twinguard forensics THREAT_ID --out DIR`: one threat's evidence into one directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from twinguard.pipelines.config import Config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("threat_id", metavar="THREAT_ID", help="the threat's id (`twinguard threats`)")
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--out", required=True, metavar="DIR", help="new (or empty) directory to write")


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.forensics.bundle import collect, write
    from twinguard.pipelines.text import printable

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):  # before minutes of reading topics
        msg = f"{out} is not empty: pass a new --out directory"
        raise ValueError(msg)
    bundle = collect(cfg, args.threat_id)
    files = write(bundle, out, cfg)
    print(f"forensic bundle for threat {printable(args.threat_id)} written to {out}: "
          f"{len(files)} files, {len(bundle.source)} source messages, {len(bundle.actions)} actions")
    for note in bundle.notes:
        print(f"  not found: {printable(note)}")
    return 0
