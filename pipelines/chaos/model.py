"""What a chaos run is configured with and records: settings, run records, the broker, constants."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MALFORMED = (  # each must end as exactly one dead letter
    b"{oops",
    b"",
    b'{"device_id":"x-chaos","type":"toaster","ts":1,"seq":1,"signals":{}}',
    b"\xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'{"device_id": 5}',
)
MALFORMED_KEY = b"chaos-malformed"
CHUNK_EVENTS = 500  # produce in small chunks so arrival follows event time closely
LEAD_S = 1.0  # first event time, seconds after the fleet is planned
KILL_DELAY_S = (0.5, 3.0)
OUTPUT_TIMEOUT_S = 120.0  # a run that writes nothing for this long is broken
FINISH_TIMEOUT_S = 600.0
LOG_PATTERN = re.compile(r"WARNING|ERROR|Traceback|%[0-4]\|")


Chunks = Iterator[tuple[int, list[bytes], list[bytes]]]  # (send time ms, keys, values)


# what the dataflow runs: a change mid-run means restarted runs and the reference differ in code
CODE_PACKAGES = ("twinguard.operators", "twinguard.pipelines", "twinguard.schemas")
CODE_SUFFIXES = (".py", ".toml", ".json", ".ubj")


class ChaosError(RuntimeError):
    """The chaos run could not be carried out (not: the dataflow failed it); says what broke."""


@dataclass(frozen=True)
class ChaosConfig:
    """What to inflict: kills, broker outage, input size; where to run."""

    kills: int = 10
    outage_s: float = 30.0
    events: int = 300_000
    brokers: str | None = None  # None: a private broker (the only kind chaos may stop)
    seed: int = 7
    duration_s: float | None = None  # of live telemetry; None: long enough for the schedule
    until_idle_s: float = 8.0
    snapshot_interval_s: float = 1.0
    partitions: int = 2
    keep_dir: Path | None = None  # keep run logs here (default: a temp dir, kept only on failure)

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a meaningful report."""
        if self.kills < 0 or self.outage_s < 0:
            raise ValueError(f"kills and outage seconds must be >= 0, got {self.kills}, "
                             f"{self.outage_s}")
        if self.events < 1000:
            raise ValueError(f"events must be >= 1000 for a meaningful run, got {self.events}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")

    def duration(self) -> float:
        """Seconds of live telemetry: the kill and outage schedule must end while input flows."""
        if self.duration_s is not None:
            return self.duration_s
        # ~5 s start-up + up to 3 s before each kill; outage run: start-up, outage, broker restart
        return 20.0 + 8.0 * self.kills + (self.outage_s + 30.0 if self.outage_s else 0.0)


@dataclass
class RunRecord:
    """One `twinguard run` process: why it ended, when (epoch ms), and its log."""

    index: int
    role: str  # kill | outage | final
    log_path: Path
    started_ms: int
    first_output_ms: int | None = None
    ended_ms: int | None = None
    exit_code: int | None = None
    killed: bool = False
    peak_rss_mb: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view (durations in seconds)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "log_path"}
        d["startup_s"] = _secs(self.first_output_ms, self.started_ms)
        d["lifetime_s"] = _secs(self.ended_ms, self.started_ms)
        return d


@dataclass
class Outage:
    """The broker outage: when it went down and came back (epoch ms)."""

    down_ms: int = 0
    up_ms: int = 0
    produced_at_down: int = 0
    produced_at_up: int = 0


@dataclass
class Broker:
    """The Kafka the chaos run uses; a private one can be stopped and restarted."""

    brokers: str
    port: int | None = None
    data_dir: Path | None = None

    @property
    def private(self) -> bool:
        """True when this run started the broker (and may stop it)."""
        return self.data_dir is not None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _secs(later: int | None, earlier: int | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) / 1000, 2)
