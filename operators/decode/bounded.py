"""One JSON message decoded within the limits every input topic shares: its size, its nesting depth
(checked before parsing: the parser recurses) and its schema. Each input names its own limit and
raises its own error type, so a dead letter says which setting to change."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from twinguard.operators.decode.depth import depth_reason
from twinguard.schemas.fields import PATTERN_MEANING

M = TypeVar("M")


def decode_within(decoder: msgspec.json.Decoder[M], value: bytes, max_bytes: int, limit: str,
                  what: str, error: type[Exception]) -> M:
    """`value` as the decoder's type; `error(reason)` if it is larger than `max_bytes` (the setting
    called `limit`), nested too deep, malformed or not of the schema."""
    if len(value) > max_bytes:
        raise error(f"{what} of {len(value)} bytes exceeds {limit}={max_bytes}")
    too_deep = depth_reason(value)
    if too_deep is not None:
        raise error(too_deep)
    try:
        return decoder.decode(value)
    except msgspec.ValidationError as e:
        raise error(f"schema: {schema_reason(str(e))}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:  # msgspec raises the latter for bad UTF-8
        raise error(f"malformed JSON: {e}") from None


def schema_reason(error: str) -> str:
    """A msgspec validation error with a failed pattern named by what it means, not by its regex
    (the address pattern alone is 1,500 characters)."""
    for pattern, meaning in PATTERN_MEANING.items():
        error = error.replace(f"matching regex {pattern!r}", meaning)
    return error
