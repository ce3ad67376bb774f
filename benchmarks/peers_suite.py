"""Peers suite: naive (Bytewax, Quix Streams) and expert (Bytewax batched, micro-batch consumer)
peers on the same input topic as e2e.

Each peer runs as its own process over every message of the topic; the harness checks that it
processed them all (its per-event counter must equal the topic's message count). Throughput uses
the same clock as ours: first message handled -> last message handled, inside the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twinguard.benchmarks import broker
from twinguard.benchmarks.harness import PYTHON, log, quix_env_versions
from twinguard.benchmarks.peers.common import write_spec
from twinguard.operators.detect.scoring import MODEL_FILE, default_model_dir
from twinguard.pipelines.config import Config
from twinguard.schemas.device_types import MAX_SIGNALS, load_device_types
from twinguard.schemas.features import FEATURE_NAMES, THREAT_CLASSES

# The peers are standalone scripts (stdlib + numpy + xgboost + their framework, never twinguard): run
# by path, they import their sibling `common` module, also inside the Quix venv where twinguard is absent.
PEERS_DIR = Path(__file__).resolve().parent / "peers"
QUIX_ENV = Path(os.environ.get("TWINGUARD_BENCH_QUIX_VENV")
                or Path.home() / ".cache" / "twinguard-bench" / "quix-venv")
# quixstreams pins confluent-kafka<2.13 (twinguard uses 2.16): it gets a venv of its own
QUIX_REQUIREMENTS = ["quixstreams", "numpy", "xgboost-cpu"]


def write_peer_spec(cfg: Config, path: Path) -> Path:
    types = load_device_types()
    spec_types = {t.name: {"signals": [s.name for s in t.signals],
                           "lo": [s.min for s in t.signals], "hi": [s.max for s in t.signals],
                           "nominal_hz": float(types.nominal_hz[i])}
                  for i, t in enumerate(types.types)}
    model_dir = Path(cfg.detection.model_dir) if cfg.detection.model_dir else default_model_dir()
    write_spec(path, list(FEATURE_NAMES), list(THREAT_CLASSES), cfg.detection.model_threshold,
               spec_types, MAX_SIGNALS, str(model_dir / MODEL_FILE))
    return path


def quix_python() -> tuple[str | None, str]:
    """The Quix venv's python, creating the venv (pip install quixstreams) if missing."""
    py = QUIX_ENV / "bin" / "python"
    if py.exists():
        return str(py), f"existing venv {QUIX_ENV}"
    log(f"peers: creating {QUIX_ENV} and installing {' '.join(QUIX_REQUIREMENTS)} from PyPI")
    try:
        QUIX_ENV.parent.mkdir(parents=True, exist_ok=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(QUIX_ENV)], check=True, timeout=300,
                       capture_output=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *QUIX_REQUIREMENTS], check=True,
                       timeout=1200, capture_output=True)
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        return None, f"could not install quixstreams: {e} {detail.decode(errors='replace')[-500:]}"
    return str(py), f"created venv {QUIX_ENV}"


def _run_peer(name: str, cmd: list[str], stats: Path, log_path: Path, expected: int,
              timeout_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    with log_path.open("wb") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"error": f"{name} did not finish in {timeout_s:.0f} s (killed); see {log_path}"}
    if rc != 0 or not stats.exists():
        return {"error": f"{name} exited with {rc}; see {log_path}"}
    res: dict[str, Any] = json.loads(stats.read_text())
    res["process_wall_s"] = round(time.monotonic() - t0, 2)
    res["expected"] = expected
    res["processed_every_event"] = res["processed"] == expected
    if not res["processed_every_event"]:
        res["error"] = f"{name} processed {res['processed']} of {expected} events"
    log(f"peers: {name}: {res['events_per_s']:,.0f} ev/s, processed {res['processed']:,} of "
        f"{expected:,}")
    return res


# name -> (script, how it works); the naive ones as the docs teach, the expert ones as a data
# engineer writes them (batched parsing, vectorised windows, one predict per batch of closed windows)
PEERS = {
    "bytewax_naive": ("bytewax_naive.py", "Bytewax as its docs teach: per-event state, 1-row predict"),
    "quix": ("quix_app.py", "Quix Streams as its docs teach: per-event state, 1-row predict"),
    "bytewax_expert": ("bytewax_expert.py", "Bytewax stateful_batch per partition, polars windows, "
                       "batch predict per closed windows"),
    "microbatch": ("microbatch.py", "confluent-kafka consume(10000) + polars windows + batch predict"),
}
NAIVE = ("bytewax_naive", "quix")


def run(cfg: Config, brokers: str, topic: str, expected: int, logdir: Path, partitions: int,
        which: tuple[str, ...] = tuple(PEERS)) -> dict[str, Any]:
    spec = write_peer_spec(cfg, logdir / "peer-spec.json")
    out: dict[str, Any] = {}
    for name in which:
        script, how = PEERS[name]
        py, venv = quix_python() if name == "quix" else (PYTHON, "")
        if py is None:
            out[name] = {"error": venv}
            continue
        # per-event 1-row predict runs ~2-3k events/s: allow for that and a loaded machine
        timeout = 300 + expected / (500 if name in NAIVE else 20_000)
        o = broker.output_topics(brokers, f"peer-{name}", partitions)["threats"]
        log(f"peers: {name} over {expected:,} messages{f' ({venv})' if venv else ''}")
        stats = logdir / f"peer-{name}.json"
        extra = ["--idle", "5"] if name == "quix" else []
        res = _run_peer(name, [py, str(PEERS_DIR / script), "--spec", str(spec), "--brokers", brokers,
                               "--topic", topic, "--out-topic", o, "--stats", str(stats), *extra],
                        stats, logdir / f"peer-{name}.log", expected, timeout)
        res.update(how=how, threats=broker.message_count(brokers, o), threats_topic=o)
        if name == "quix":
            res.update(venv=venv, env_versions=quix_env_versions(py))
        out[name] = res
    for res in out.values():
        if "events_per_s" in res:
            res["events_per_s"] = round(res["events_per_s"])
    return out
