"""Dead letters that always fit on the broker: the original bytes up to a bound, plus length and sha256.

A rejected message of any size (a 10 MB input, an output the broker refused) must still leave a dead
letter behind; base64 of a large message alone would exceed the broker's message size and stop the sink.
"""

from __future__ import annotations

import base64
import hashlib

import msgspec

from twinguard.operators.batches import OutMsg
from twinguard.schemas.messages import DeadLetter

KEEP_BYTES = 65_536  # original bytes kept (base64: ~87 KB, far below Kafka's default 1 MB limit)
PREVIEW_CHARS = 200
REASON_CHARS = 500
_encoder = msgspec.json.Encoder()


def preview(value: bytes, limit: int = PREVIEW_CHARS) -> str:
    """The start of some bytes as text, undecodable bytes escaped."""
    return value[:limit].decode("utf-8", "backslashreplace")


def bounded_dead_letter(topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
                        stage: str, reason: str, now_ms: int) -> OutMsg:
    """A dead-letter message for `value` read from topic[partition]@offset (-1: not read from one)."""
    kept = value[:KEEP_BYTES]
    dl = DeadLetter(topic=topic, partition=partition, offset=offset,
                    key=preview(key) if key is not None else None, stage=stage,
                    reason=reason[:REASON_CHARS], value_b64=base64.b64encode(kept).decode(),
                    value_preview=preview(value), rejected_at=now_ms, value_length=len(value),
                    value_sha256=hashlib.sha256(value).hexdigest(),
                    truncated=len(kept) < len(value))
    return OutMsg("deadletter", (key or b"")[:KEEP_BYTES], _encoder.encode(dl))
