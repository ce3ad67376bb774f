"""Detection on real datasets through the user commands: `python -m twinguard.benchmarks.detection`.

For each dataset (BATADAL, NAB realKnownCause, SMD, TEP, TON_IoT) it prepares what the protocol
needs in a work directory outside the repository, runs `twinguard train / replay / evaluate` as
subprocesses exactly as a user would, and writes results.json and results.md (table, every command
verbatim, machine, date) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twinguard.benchmarks.detection import protocols
from twinguard.benchmarks.detection.commands import CommandFailedError, CommandLog
from twinguard.benchmarks.detection.report import render
from twinguard.benchmarks.harness import _git_head, machine

DATASETS = {"batadal": protocols.batadal, "nab": protocols.nab, "smd": protocols.smd,
            "tep": protocols.tep, "ton_iot": protocols.ton_iot}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m twinguard.benchmarks.detection", description=__doc__)
    p.add_argument("--datasets", default="/work/shared/datasets",
                   help="folder with batadal/, nab/, smd/, tep/, ton_iot/ (each with its SOURCE.md)")
    p.add_argument("--out", default="benchmarks/detection/results",
                   help="results folder (results.json, results.md)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "twinguard-detection"),
                   help="prepared tables, models and predictions (never inside the repo)")
    p.add_argument("--only", choices=sorted(DATASETS), nargs="+", default=sorted(DATASETS),
                   help="run only these datasets")
    p.add_argument("--deltas", action="store_true",
                   help="variant: pass --deltas to every train and replay (learned baselines of "
                        "each signal's row-to-row change too)")
    p.add_argument("--limits", choices=("quantile", "spot", "dspot"), default=None,
                   help="variant: pass --limits to every train and replay (how the multivariate "
                        "model's limits are found; default: the product's default)")
    p.add_argument("--time-context", choices=("auto", "off"), default=None,
                   help="variant: pass --time-context to every train and replay")
    p.add_argument("--render", action="store_true",
                   help="only rewrite results.md from the results.json in --out")
    args = p.parse_args(argv)
    data, work, out = Path(args.datasets), Path(args.work), Path(args.out)
    if args.render:
        (out / "results.md").write_text(render(json.loads((out / "results.json").read_text())))
        return 0
    flags = ((("--deltas",) if args.deltas else ())
             + (("--limits", args.limits) if args.limits else ())
             + (("--time-context", args.time_context) if args.time_context else ()))
    extra = {"train": flags, "replay": flags} if flags else {}
    work = work / "_".join(f.lstrip("-") for f in flags) if flags else work
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "git": _git_head(),
        "machine": machine(), "variant": " ".join(flags).lstrip("-") or "default",
        "datasets": {}}
    failed = False
    for name in args.only:
        log = CommandLog(extra=extra)
        print(f"== {name}", flush=True)
        try:
            entry = DATASETS[name](data / name, work, log)
        except (CommandFailedError, OSError, ValueError) as e:
            traceback.print_exc()
            entry, failed = {"error": str(e)[:2000]}, True
        entry["commands"] = log.records
        results["datasets"][name] = entry
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(render(results))
    print(f"results written to {out}/results.json and {out}/results.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
