"""Dead letters stay bounded whatever the message: a prefix of the bytes, the length and sha256."""

from __future__ import annotations

import base64
import hashlib
import json

from twinguard.operators.deadletters import KEEP_BYTES, bounded_dead_letter
from twinguard.operators.decode.depth import MAX_DEPTH, depth_reason, nesting_depth
from twinguard.schemas.messages import DeadLetter


def test_a_10_mb_message_leaves_a_dead_letter_of_bounded_size() -> None:
    value = b"A" * 10_000_000
    out = bounded_dead_letter("t", 3, 17, b"k" * 200_000, value, "decode", "r" * 5000, 1)
    assert out.role == "deadletter" and len(out.value) < 2 * KEEP_BYTES and len(out.key) <= KEEP_BYTES
    d = json.loads(out.value)
    assert d["value_length"] == len(value) and d["truncated"] is True
    assert d["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(d["value_b64"]) == value[:KEEP_BYTES] and len(d["reason"]) == 500


def test_a_small_message_is_kept_whole_and_decodes_as_the_schema() -> None:
    out = bounded_dead_letter("t", 0, 1, None, b"\x00garbage", "decode", "why", 1)
    import msgspec

    d = msgspec.json.decode(out.value, type=DeadLetter)
    assert base64.b64decode(d.value_b64) == b"\x00garbage" and not d.truncated and d.key is None


def test_nesting_depth_skips_strings_and_escapes() -> None:
    assert nesting_depth(b'{"a": [1, {"b": null}]}') == 3
    assert nesting_depth(b'{"a": "[[[[[[\\"[[[[", "b": [[]]}') == 3
    assert nesting_depth(b"[" * 100_000) == MAX_DEPTH + 1  # stops reading once too deep
    assert depth_reason(b"[" * (MAX_DEPTH + 1)) is not None and depth_reason(b"[]") is None
