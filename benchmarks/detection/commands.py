"""Run `twinguard` user commands as a user would (a subprocess each) and record them verbatim."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT_S = 1800


class CommandFailedError(RuntimeError):
    """A user command exited non-zero; the record holds its output."""


def _twinguard() -> str:
    beside = Path(sys.executable).parent / "twinguard"
    found = str(beside) if beside.exists() else shutil.which("twinguard")
    if not found:
        msg = "the `twinguard` command is not installed in this environment (make install)"
        raise CommandFailedError(msg)
    return found


@dataclass
class CommandLog:
    """Every command run so far, as typed (`twinguard ...`), with exit code, seconds and output tail."""

    records: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per subcommand, appended

    def twinguard(self, *args: str) -> str:
        """Run `twinguard ARGS`; return its stdout; raise CommandFailedError on a non-zero exit."""
        args = (*args, *self.extra.get(args[0], ())) if args else args
        shown = shlex.join(["twinguard", *args])
        print(f"$ {shown}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([_twinguard(), *args], capture_output=True, text=True,  # noqa: S603
                              timeout=TIMEOUT_S, check=False)
        record = {"command": shown, "exit_code": proc.returncode,
                  "seconds": round(time.perf_counter() - t0, 1),
                  "output_tail": _tail(proc.stdout + proc.stderr)}
        self.records.append(record)
        if proc.returncode != 0:
            raise CommandFailedError(f"{shown} exited {proc.returncode}: {record['output_tail']}")
        return proc.stdout

    def evaluate(self, predictions: Path, out: Path, *extra: str) -> dict[str, Any]:
        """`twinguard evaluate --predictions` and its JSON result."""
        self.twinguard("evaluate", "--predictions", str(predictions), "--out", str(out), *extra)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
