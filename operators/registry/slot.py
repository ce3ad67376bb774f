"""The scorer a process uses now, swapped whole by the registry reader, read once per batch.

The reader thread verifies and loads a new version completely, then assigns `current` (one
attribute write: atomic in CPython). A shard reads `current` once at the start of each Bytewax
activation (ShardEngine.pin_model) and scores everything of that activation with it, so no batch
is scored half by one model and half by another; the next activation of every worker picks the new
one up, with no restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from twinguard.operators.detect.scoring import Scorer


@dataclass(frozen=True)
class Refusal:
    version: str
    reason: str
    at_ms: int


@dataclass
class ModelSlot:
    current: Scorer
    refused: list[Refusal] = field(default_factory=list)  # newest last (the registry status)
    swaps: int = 0
    failure: str | None = None  # set when the registry reader stopped for good
    on_swap: list[Callable[[Scorer], None]] = field(default_factory=list)
    on_refuse: list[Callable[[Refusal], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def swap(self, scorer: Scorer) -> None:
        with self._lock:
            self.current = scorer
            self.swaps += 1
        for listener in self.on_swap:
            listener(scorer)

    def refuse(self, version: str, reason: str, at_ms: int) -> None:
        refusal = Refusal(version, reason, at_ms)
        with self._lock:
            self.refused = [*self.refused[-19:], refusal]
        for listener in self.on_refuse:
            listener(refusal)
