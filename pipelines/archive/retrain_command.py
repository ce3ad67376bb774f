"""`twinguard train --from-archive DIR`: champion/challenger retraining (pipelines/archive/retrain.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twinguard.pipelines.config import Config

PROMOTED, KEPT = 0, 1  # exit codes: the challenger was written / the champion stays


def add_arguments(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("from the archive", "champion/challenger retraining on windows "
                             "archived by `twinguard archive` and labelled by analyst feedback; "
                             "exit 0 = challenger better and written to --out, 1 = champion kept")
    g.add_argument("--from-archive", default=None, metavar="DIR",
                   help="archive directory written by `twinguard archive`")
    g.add_argument("--champion", default=None, metavar="MODEL_DIR",
                   help="the model to beat (default: [detection] model_dir, else the shipped one)")


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.archive.retrain import retrain

    if not args.out:
        print("twinguard train: error: --from-archive needs --out MODEL_DIR", file=sys.stderr)
        return 2
    v = retrain(cfg, Path(args.from_archive), args.champion, Path(args.out), args.rounds)
    print(v.table)
    if v.promoted:
        print(f"challenger written to {args.out}: {v.reason}. Next: `twinguard model promote "
              f"{args.out}` puts it into the running fleet")
        return PROMOTED
    print(f"champion kept, nothing written: {v.reason}")
    return KEPT
