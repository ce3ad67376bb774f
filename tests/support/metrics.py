"""Reading twinguard's Prometheus metrics: the process registry, a scraped endpoint, promtool."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from twinguard.pipelines.metrics import instruments

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
REPO = Path(__file__).resolve().parents[2]
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",), "info": ("_info",)}


def promtool() -> str:
    """The promtool binary (Debian's prometheus package); fails with how to install it."""
    path = shutil.which("promtool")
    assert path, "promtool not found: run deploy/system-packages.sh (Debian package prometheus)"
    return path


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS` from the repository root, output captured."""
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)


def exported_names() -> set[str]:
    """Every sample name twinguard can export (families of the registry with our prefix)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith(instruments.PREFIX + "_"):
            names |= {family.name + s for s in SUFFIXES[family.type]}
    return names


def parse(text: str) -> Samples:
    """Exposition text -> {(sample name, sorted labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def local_samples() -> Samples:
    """This process's registry as samples (what its endpoint would serve)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in REGISTRY.collect() for s in family.samples}


def scrape(url: str, timeout_s: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (our own endpoint)
        return str(resp.read().decode())


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of the samples called `name` whose labels include `match`."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and all((k, val) in labels for k, val in match.items()))


def by_label(samples: Samples, name: str, keys: Iterable[str]) -> dict[tuple[str, ...], float]:
    """Samples called `name` summed per value of the label(s) `keys` (zeros left out)."""
    keys = tuple(keys)
    out: dict[tuple[str, ...], float] = {}
    for (n, labels), v in samples.items():
        if n == name and v:
            d = dict(labels)
            k = tuple(d.get(x, "") for x in keys)
            out[k] = out.get(k, 0.0) + v
    return out


def delta(after: Samples, before: Samples) -> Samples:
    """after - before per sample (counters of this process between two points)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def wait_for(check: Callable[[], str], timeout_s: float, every_s: float = 0.5) -> None:
    """Poll `check` (returns '' when satisfied, else what is still missing) until the deadline."""
    deadline = time.monotonic() + timeout_s
    missing = check()
    while missing:
        assert time.monotonic() < deadline, f"after {timeout_s:.0f} s: {missing}"
        time.sleep(every_s)
        missing = check()
