"""Wall-clock milliseconds: the one clock result records, TTLs and the guard's window use."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
