"""Stable 32-bit hashes of per-event strings (destination address, login principal) for the kernels.

crc32 + 1, 0 = absent, like TelemetryBatch.src_hash: stable across processes and restarts (Python's
hash() is salted), so learned sets survive snapshots.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def string_hashes(values: list[str | None]) -> I64:
    """crc32(value) + 1 per row, 0 where the value is missing or empty."""
    crc = zlib.crc32
    return np.fromiter((crc(v.encode()) + 1 if v else 0 for v in values), dtype=np.int64,
                       count=len(values))
