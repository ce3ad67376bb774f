"""Malformed messages mixed into a stream on purpose (demo, tests): bad input must become dead letters."""

from __future__ import annotations

import random

# Each maker turns a valid message into a specific kind of garbage.
_MAKERS = (
    lambda v: v[: len(v) // 2],                                     # truncated JSON
    lambda v: b"\xff\xfe" + v,                                      # invalid UTF-8
    lambda v: v.replace(b'"seq":', b'"seq":"x",  "_":', 1),          # wrong type
    lambda v: v.replace(b'"type":"', b'"type":"toaster', 1),        # unknown device type
    lambda v: b'{"device_id":"?","ts":1}',                          # missing fields
    lambda v: v.replace(b'"signals":{', b'"signals":{"x":1e999,', 1),  # non-finite, unknown signal
    lambda v: b"",                                                  # empty
)


def corrupt_some(values: list[bytes], rate: float, rng: random.Random) -> tuple[list[bytes], int]:
    """Replace about `rate` of the messages with malformed ones; returns (values, how many)."""
    out, n = list(values), 0
    for i in range(len(out)):
        if rng.random() < rate:
            out[i] = _MAKERS[rng.randrange(len(_MAKERS))](out[i])
            n += 1
    return out, n
