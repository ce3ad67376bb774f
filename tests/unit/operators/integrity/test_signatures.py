"""Signature checks never raise on what a message claims as its signature."""

from __future__ import annotations

import msgspec
import numpy as np

from twinguard.operators.batches import RawBatch
from twinguard.operators.decode.fast import decode_batch
from twinguard.operators.decode.telemetry import DecodeConfig
from twinguard.operators.integrity.signatures import DEV_MASTER, SIG_BAD, KeyRing
from twinguard.schemas.device_types import load_device_types
from twinguard.schemas.messages import Telemetry

KEYS = KeyRing(DEV_MASTER)


def test_a_non_ascii_signature_is_bad_not_a_crash() -> None:
    assert KEYS.check("d", b"payload", "é" * 64) == SIG_BAD
    assert KEYS.check("d", b"payload", "\ud800") == SIG_BAD


def test_decode_dead_letters_nothing_and_marks_a_non_ascii_signature_bad() -> None:
    ev = Telemetry(device_id="d-1", type="thermostat", ts=1_700_000_000_000, seq=1,
                   signals={"temperature_c": 20.0}, sig="ü" * 64)
    values = [msgspec.json.encode(ev)] * 40  # the bulk path, then its fallback to the reference
    raw = RawBatch("t", 0, np.arange(40, dtype=np.int64), [b"d-1"] * 40, values)
    out = decode_batch(raw, load_device_types(), KEYS,
                       DecodeConfig(shards=4, max_message_bytes=4096, max_future_skew_ms=10**12),
                       now_ms=1_700_000_000_000)
    assert len(out.oks) == 40 and (out.oks.sig_state == SIG_BAD).all()
