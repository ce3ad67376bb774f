"""py-spy sampling profiles: record a process, then rank frames by own (self) and inclusive time.

Numba kernels are native code: py-spy (without --native) charges their time to the Python line that
called them, which is what we want to see (which step of ours is expensive).

    python -m twinguard.benchmarks.profiling operators-target --devices N --duration S --seconds T --ready F
runs the in-process operator path (decode -> shard engines) in a loop for the profiler to attach to.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinguard.benchmarks.harness import SOURCE_ROOT

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, else on PATH."""
    import sys

    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` for `seconds` into a collapsed-stack file; None if py-spy is missing."""
    exe = py_spy()
    if exe is None:
        return None
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(int(seconds), 1)),
           "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking",
           "--full-filenames"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """'fn (path/to/file.py:12)' -> 'fn (file.py)': aggregate a function over its lines."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for root in (str(SOURCE_ROOT) + "/", "site-packages/"):
        if root in path:
            path = path.split(root, 1)[1]
            break
    return f"{m.group('fn')} ({path})"


def _line(frame: str) -> str:
    """'fn (path/file.py:12)' -> 'fn (file.py:12)': keep the line (which call inside fn)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{_short(frame)[:-1]}:{m.group('line')})" if m.group("line") else _short(frame)


@dataclass
class Profile:
    samples: int
    self_fn: list[tuple[str, float]]  # (function, % of samples it was on top of the stack)
    self_line: list[tuple[str, float]]  # (function:line, % on top) - which call is expensive
    inclusive: list[tuple[str, float]]  # (function, % of samples it was anywhere in the stack)

    def as_dict(self, top: int = 15) -> dict[str, Any]:
        return {"samples": self.samples,
                "top_self": [{"frame": f, "pct": p} for f, p in self.self_fn[:top]],
                "top_self_lines": [{"frame": f, "pct": p} for f, p in self.self_line[:top]],
                "top_inclusive": [{"frame": f, "pct": p} for f, p in self.inclusive[:top]]}


def summarize(path: Path) -> Profile | None:
    """Rank frames of a py-spy raw (collapsed) file; None if it holds no samples."""
    if not path.exists():
        return None
    self_fn: Counter[str] = Counter()
    self_line: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for row in path.read_text(errors="replace").splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        self_fn[_short(frames[-1])] += n
        self_line[_line(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    if total == 0:
        return None

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / total, 1)) for k, v in c.most_common(40)]

    return Profile(total, pct(self_fn), pct(self_line), pct(incl))


def format_text(title: str, prof: Profile | None, note: str = "", top: int = 20) -> str:
    lines = [f"== {title} ==", note] if note else [f"== {title} =="]
    if prof is None:
        return "\n".join([*lines, "(no samples)", ""])
    lines.append(f"{prof.samples} samples")
    for head, rows in (("own time, by function", prof.self_fn),
                       ("own time, by line (the call that is expensive)", prof.self_line),
                       ("inclusive time (function anywhere on the stack)", prof.inclusive)):
        lines.append(f"-- {head}")
        lines += [f"{p:6.1f}%  {f}" for f, p in rows[:top]]
    return "\n".join(lines) + "\n"


def _operators_target(devices: int, duration: float, seconds: float, ready: Path) -> None:
    """Loop the in-process operator path over one workload until `seconds` have passed."""
    from twinguard.benchmarks.workload import generate
    from twinguard.pipelines.config import load_config
    from twinguard.pipelines.flow import Runtime
    from twinguard.pipelines.offline import run_offline

    rt = Runtime.from_config(load_config())
    w = generate(rt, devices, duration)
    run_offline(w.chunks(2000), rt)  # warm-up
    ready.touch()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        run_offline(w.chunks(2000), rt)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("operators-target")
    t.add_argument("--devices", type=int, default=2000)
    t.add_argument("--duration", type=float, default=40.0)
    t.add_argument("--seconds", type=float, default=15.0)
    t.add_argument("--ready", required=True)
    a = ap.parse_args()
    _operators_target(a.devices, a.duration, a.seconds, Path(a.ready))


if __name__ == "__main__":
    main()
