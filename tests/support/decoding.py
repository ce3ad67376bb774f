"""Signed thermostat reports and the check that the fast decoder equals the reference decoder."""

from __future__ import annotations

import msgspec
import numpy as np

from tests.support.devices import KEYS, TYPES
from twinguard.operators.batches import RawBatch
from twinguard.operators.decode import fast as fastdecode
from twinguard.operators.decode.telemetry import DecodeConfig, DecodeOut
from twinguard.operators.decode.telemetry import decode_batch as reference
from twinguard.schemas.messages import Telemetry, canonical_bytes

DECODE_CFG = DecodeConfig(shards=4, max_message_bytes=1024, max_future_skew_ms=86_400_000)
NOW = 1_700_000_000_000


def both(values: list[bytes | None], keys: list[bytes | None] | None = None,
         partition: int = 2) -> tuple[DecodeOut, DecodeOut]:
    """The reference and the fast decoder's output for the same batch."""
    raw = RawBatch("telemetry", partition, np.arange(40, 40 + len(values), dtype=np.int64),
                   keys if keys is not None else [None] * len(values), values)
    fast = fastdecode.decode_batch(raw, TYPES, KEYS, DECODE_CFG, NOW, fast_from=1)  # parser even for one
    return reference(raw, TYPES, KEYS, DECODE_CFG, NOW), fast


def assert_same(values: list[bytes | None], keys: list[bytes | None] | None = None) -> DecodeOut:
    """Both decoders give the same rows, columns (dtype, -0.0 and NaN too) and dead letters."""
    ref, fast = both(values, keys)
    assert ref.errs == fast.errs
    assert ref.rejected == fast.rejected and ref.last_reason == fast.last_reason
    for name, want in ref.oks.__dict__.items():
        got = fast.oks.__dict__[name]
        if isinstance(want, list):
            assert got == want, name
        else:
            assert got.dtype == want.dtype and got.shape == want.shape, name
            assert np.array_equal(got, want, equal_nan=True), name
            if got.dtype.kind == "f":  # -0.0 vs 0.0 too
                assert np.array_equal(np.signbit(got), np.signbit(want)), name
    return fast


def signed(ev: Telemetry) -> bytes:
    """The event signed with the development keys, encoded as producers send it (sorted keys)."""
    ev = msgspec.structs.replace(ev, sig=KEYS.sign(ev.device_id, canonical_bytes(ev)))
    return msgspec.json.encode(ev, order="sorted")


def thermostat(seq: int = 1, **over: object) -> Telemetry:
    """A valid thermostat report 5 s before NOW; `over` replaces fields."""
    ev = Telemetry(device_id="thermostat-1", type="thermostat", ts=NOW - 5000, seq=seq,
                   signals={"temperature_c": 21.25, "setpoint_c": 21.0, "humidity_pct": 40.000001,
                            "heating": 1.0})
    return msgspec.structs.replace(ev, **over) if over else ev
