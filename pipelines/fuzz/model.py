"""What a fuzz run is configured with, the hostile inputs it replays, and how they are grouped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "fz"  # every device id a fuzz run invents is fz-<kind>-...: its twin says which kind it is
MODES = ("auto", "mixed", "isolated")


class FuzzError(RuntimeError):
    """The fuzz run could not be carried out (not: the dataflow failed it); says what broke."""


@dataclass(frozen=True)
class FuzzConfig:
    """Sizes, seed and how to drive the dataflow."""

    size: int = 2_000  # random mutations, and random device ids, each
    seed: int = 7
    partitions: int = 2
    until_idle_s: float = 3.0
    max_restarts: int = 2  # a run that crashes is started again this often (it resumes, recovery)
    run_timeout_s: float = 900.0
    mode: str = "auto"  # mixed: every kind in one run; isolated: one run per kind; auto: isolated
    # only when the mixed run failed, to say which kinds failed
    keep_dir: Path | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a meaningful report."""
        if self.size < 10:
            raise ValueError(f"--size must be >= 10, got {self.size}")
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.partitions < 1 or self.max_restarts < 0:
            raise ValueError(f"partitions must be >= 1 and restarts >= 0, got {self.partitions}, "
                             f"{self.max_restarts}")


@dataclass(frozen=True)
class Message:
    """One input message: which input topic (role), key and value."""

    role: str  # telemetry | activity | intel
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Outcome:
    """What the output topics say after the runs (the part a kind's check reads)."""

    twins: dict[str, dict[str, Any]]  # device id -> latest twin
    threats: list[dict[str, Any]]
    dead: dict[tuple[str, int, int], dict[str, Any]]  # (topic, partition, offset) -> dead letter
    logs: str  # what the dataflow runs wrote (stdout + stderr)


Check = Callable[[Outcome], list[str]]  # problems found (empty: the kind's promise holds)


@dataclass
class Kind:
    """One kind of hostile input: the issue item it comes from, its messages, what must hold."""

    name: str
    item: str  # issue 18 item(s), "" for the valid baseline
    what: str
    messages: list[Message] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def device(self, suffix: str) -> str:
        """A device id owned by this kind."""
        return f"{PREFIX}-{self.name}-{suffix}"


def kind_of_device(device_id: str) -> str | None:
    """The kind that invented `device_id` (None: not a fuzz device)."""
    parts = device_id.split("-", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None
