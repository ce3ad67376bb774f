"""How deeply a JSON text nests, found by one byte scan before any parser recurses into it.

msgspec (and json) recurse per nesting level: 1,000 levels in 2.5 KB raised RecursionError and
stopped the flow. No message of ours nests more than a few levels, so anything deeper is rejected.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

MAX_DEPTH = 16  # telemetry nests 3 levels (message, net/auth/signals), activity 2, intel 1
_STEP = np.zeros(256, dtype=np.int64)  # nesting change per byte outside strings
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _depth(buf: npt.NDArray[np.uint8], limit: int) -> int:
    depth, deepest, in_string, escaped = 0, 0, False, False
    for c in buf:
        if in_string:
            if escaped:
                escaped = False
            elif c == 92:  # backslash
                escaped = True
            elif c == 34:  # quote
                in_string = False
        elif c == 34:
            in_string = True
        else:
            depth += int(_STEP[c])
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest  # deep enough to reject: no need to read on
    return deepest


def nesting_depth(value: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays/objects in `value` (strings skipped), or a number above
    `limit` as soon as one is seen."""
    return int(_depth(np.frombuffer(value, dtype=np.uint8), limit))


def depth_reason(value: bytes, limit: int = MAX_DEPTH) -> str | None:
    """Why `value` nests too deeply to parse, or None when it does not."""
    depth = nesting_depth(value, limit)
    if depth <= limit:
        return None
    return f"JSON nested more than {limit} levels deep: messages nest at most {limit}"
