"""Measurement plumbing shared by every suite: trials, medians, machine and version records.

The machine is shared and noisy: every number is the median of repeated trials after a warm-up, with
its min-max spread; load averages before and after a suite say how noisy the run was.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# the folder that holds the sub-package folders: the checkout, or site-packages/twinguard for a wheel
SOURCE_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Stat:
    """Median and spread of repeated samples of one quantity."""

    samples: list[float]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples)) if self.samples else float("nan")

    def as_dict(self, digits: int = 1) -> dict[str, Any]:
        return {"median": round(self.median, digits), "min": round(min(self.samples), digits),
                "max": round(max(self.samples), digits), "trials": len(self.samples),
                "samples": [round(s, digits) for s in self.samples]}


@dataclass
class Timing:
    """Wall and CPU seconds of one timed call (CPU = this process, all threads)."""

    wall_s: float
    cpu_s: float
    result: Any = None


def timed(fn: Callable[[], Any]) -> Timing:
    """Run fn once and measure wall time and this process's CPU time."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return Timing(time.perf_counter() - t0, time.process_time() - c0, out)


def trials(fn: Callable[[], Any], n: int, warmup: int = 1) -> list[Timing]:
    """`warmup` discarded calls, then `n` timed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn) for _ in range(n)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank-with-interpolation percentile (q in 0..100) of a non-empty list."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS: what a reader needs to compare numbers across machines."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "ram_gb": round(ram / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "loadavg_at_start": loadavg()}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions(quix_python: str | None = None) -> dict[str, Any]:
    """Versions of everything on the measured paths (quixstreams from its own venv)."""
    import confluent_kafka

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "bytewax": _version("bytewax"),
        "confluent-kafka": _version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "numba": _version("numba"),
        "numpy": _version("numpy"),
        "xgboost": _version("xgboost-cpu") or _version("xgboost"),
        "msgspec": _version("msgspec"),
        "py-spy": _version("py-spy"),
        "twinguard": _version("twinguard"),
        "twinguard_git": _git_head(),
        "quixstreams": None,
    }
    if quix_python:
        out["quixstreams_env"] = quix_env_versions(quix_python)
        out["quixstreams"] = out["quixstreams_env"].get("quixstreams")
    return out


def quix_env_versions(python: str) -> dict[str, Any]:
    """quixstreams and its confluent-kafka/librdkafka, read inside the peer's own venv."""
    code = ("import json, importlib.metadata as m, confluent_kafka as c; print(json.dumps({"
            "'quixstreams': m.version('quixstreams'), 'confluent-kafka': m.version('confluent-kafka'), "
            "'librdkafka': c.libversion()[0], 'xgboost': m.version('xgboost-cpu'), "
            "'python': '.'.join(map(str, __import__('sys').version_info[:3]))}))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                             check=True)
        info: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return info
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"error": str(e)[:300]}


def _git_head() -> str | None:
    """The checkout's commit (+dirty), or None for an installed wheel (its version says what ran)."""
    if not (SOURCE_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(SOURCE_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@contextmanager
def env_vars(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, restoring the old ones."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Log:
    """Progress lines on stderr with elapsed time, so long runs can be followed."""

    t0: float = field(default_factory=time.monotonic)

    def __call__(self, msg: str) -> None:
        print(f"[bench {time.monotonic() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


log = Log()


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
