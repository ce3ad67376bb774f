"""Stable 32-bit hashes of per-event strings (source/destination address, login principal) for the
kernels, computed by the decoders as batch columns.

crc32 + 1, 0 = absent, like TelemetryBatch.src_hash: stable across processes and restarts (Python's
hash() is salted), so learned sets survive snapshots.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def string_hash(value: str | None) -> int:
    """crc32(value) + 1, 0 when the value is missing or empty."""
    return zlib.crc32(value.encode()) + 1 if value else 0


def string_hashes(values: list[str | None]) -> I64:
    """string_hash per row (decoders hash once per distinct value; this is for hand-built batches)."""
    return np.fromiter((string_hash(v) for v in values), dtype=np.int64, count=len(values))
