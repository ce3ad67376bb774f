"""Simulated messages as columns (one row per message, lost ones included) before encoding, and
the codes in their `kind` and `mode` columns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.schemas.device_types import MAX_SIGNALS

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]

KIND_REGULAR, KIND_EXTRA, KIND_REPLAY, KIND_IDENT = 0, 1, 2, 3
# tampering per message (numbered apart from integrity.SIG_*, which grade a received message)
GENUINE, BAD_SIG, NO_SIG = 0, 1, 2


@dataclass
class Events:
    """Columns of a set of events (one row per message, dropped ones included)."""

    ts: I64
    dev: I64
    kind: I64
    tag: I64  # replay capture slot: written (regular) or re-sent (replay); -1 otherwise
    sig: F64  # [n, MAX_SIGNALS]
    bin: I64
    bout: I64
    pin: I64
    pout: I64
    conn: I64
    port: I64
    alt: Bools  # exfiltration destination
    fail: I64
    succ: I64
    mode: I64  # GENUINE / BAD_SIG / NO_SIG (tampering)
    tval: F64  # tampered signal value
    fwmod: Bools
    drop: Bools

    def take(self, idx: Arr) -> Events:
        """Rows selected by a boolean mask or index array."""
        return Events(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        """All parts' rows, in order."""
        return Events(*(np.concatenate([getattr(p, f.name) for p in parts])
                        for f in fields(Events)))

    @staticmethod
    def empty(n: int) -> Events:
        """n rows of neutral values (callers fill what they use)."""
        z = np.zeros(n, np.int64)
        return Events(z, z.copy(), z.copy(), np.full(n, -1, np.int64),
                      np.full((n, MAX_SIGNALS), np.nan), z.copy(), z.copy(), z.copy(), z.copy(),
                      z.copy(), z.copy(), np.zeros(n, bool), z.copy(), z.copy(), z.copy(),
                      np.zeros(n), np.zeros(n, bool), np.zeros(n, bool))

