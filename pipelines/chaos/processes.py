"""The processes a chaos run drives: `twinguard run` children, their logs, the private broker,
the code fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import threading
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from twinguard.pipelines.chaos.model import (
    CODE_PACKAGES,
    CODE_SUFFIXES,
    LOG_PATTERN,
    ChaosError,
    RunRecord,
    _now_ms,
)
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import local as kafka_local

MEMORY_POLL_S = 0.2  # how often a run's peak memory is read


class OutputWatch:
    """Sum of the high watermarks of the output topics: has the dataflow written anything new?"""

    def __init__(self, settings: dict[str, Any], topics: list[str], partitions: int) -> None:
        self.consumer = Consumer({**settings, "group.id": "twinguard-chaos-watch",
                                  "enable.auto.commit": False, "log_level": 0})
        self.parts = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    def total(self) -> int | None:
        """Messages in the output topics, or None while the broker does not answer."""
        try:
            return sum(self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1]
                       for tp in self.parts)
        except KafkaException:
            return None

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


class DataflowRun:
    """One `twinguard run` subprocess; a reaper thread notes when and how it ended."""

    def __init__(self, rec: RunRecord, cmd: list[str]) -> None:
        self.rec = rec
        with rec.log_path.open("wb") as f:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reaper = threading.Thread(target=self._reap, name=f"reap-{rec.index}", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        # the kernel's maxrss of a child counts the parent's image it was forked from: read the
        # high-water mark of its own memory (VmHWM) while it lives instead
        while True:
            try:
                code = self.proc.wait(MEMORY_POLL_S)
                break
            except subprocess.TimeoutExpired:
                self._note_memory()
        self.rec.exit_code, self.rec.ended_ms = code, _now_ms()

    def _note_memory(self) -> None:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:  # gone, or not Linux
            return
        kib = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")), 0)
        self.rec.peak_rss_mb = max(self.rec.peak_rss_mb or 0.0, round(kib / 1024, 1))

    def alive(self) -> bool:
        """True until the process has ended and been reaped."""
        return self._reaper.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to timeout seconds for the end; True if it ended."""
        self._reaper.join(timeout)
        return not self._reaper.is_alive()

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early if the process ends."""
        self.wait(seconds)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a machine or OOM kill."""
        if self.alive():
            self.rec.killed = True
            self.proc.send_signal(signal.SIGKILL)
        self.wait()


def restart_broker(port: int, data_dir: Path) -> kafka_local.BrokerInfo:
    """Start the private broker again on its port and data dir (state dir from the environment)."""
    try:
        return kafka_local.up(port, data_dir)
    except kafka_local.KafkaLocalError as e:
        raise ChaosError(f"restarting the broker on port {port} with data {data_dir} failed: {e}"
                         ) from e


def write_config_file(cfg: Config, path: Path) -> Path:
    """The full resolved config as TOML (0600: [kafka.extra] may hold secrets)."""
    lines: list[str] = []
    for section, values in dataclasses.asdict(cfg).items():
        lines.append(f"[{section}]")
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k not in tables]
        for name, table in tables.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def _log_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if LOG_PATTERN.search(ln)]


def _summarise_lines(lines: list[str], limit: int = 25) -> list[str]:
    """Distinct log messages (timestamps and numbers folded) with counts, most frequent first."""
    def shape(ln: str) -> str:
        return re.sub(r"\d+", "N", ln.split(": ", 1)[-1] if ln[:4].isdigit() else ln)[:240]
    counts = Counter(shape(ln) for ln in lines)
    first: dict[str, str] = {}
    for ln in lines:
        first.setdefault(shape(ln), ln[:300])
    return [f"{n}x {first[s]}" for s, n in counts.most_common(limit)]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"(no log: {e})"


def code_fingerprint() -> dict[str, str]:
    """sha256 of every source, config and model file the dataflow loads (package/relative path -> hex)."""
    out = {}
    for pkg in CODE_PACKAGES:
        root = Path(str(resources.files(pkg)))
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.suffix in CODE_SUFFIXES and "__pycache__" not in f.parts:
                out[f"{pkg}/{f.relative_to(root)}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or edited between two fingerprints."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
