"""Decoding and validation: every bad message becomes a dead letter with a precise reason."""

from __future__ import annotations

import base64
import json

import msgspec
import numpy as np
import pytest

from tests.support.devices import KEYS, TYPES
from twinguard.operators.batches import RawBatch
from twinguard.operators.decode.telemetry import DecodeConfig, decode_batch
from twinguard.operators.integrity.signatures import SIG_BAD, SIG_MISSING, SIG_OK
from twinguard.pipelines.sim.faults import corrupt_some
from twinguard.schemas.messages import Telemetry, canonical_bytes

CFG = DecodeConfig(shards=4, max_message_bytes=4096, max_future_skew_ms=60_000)
NOW = 1_700_000_100_000


def good(seq: int = 1, device: str = "thermostat-1", sign: bool = True, **over: object) -> bytes:
    ev = Telemetry(device_id=device, type="thermostat", ts=1_700_000_000_000, seq=seq,
                   signals={"temperature_c": 21.5, "setpoint_c": 21.0, "humidity_pct": 40.0,
                            "heating": 1.0})
    ev = msgspec.structs.replace(ev, **over) if over else ev
    if sign:
        ev = msgspec.structs.replace(ev, sig=KEYS.sign(ev.device_id, canonical_bytes(ev)))
    return msgspec.json.encode(ev)


def decode(values: list[bytes | None], keys: list[bytes | None] | None = None):  # type: ignore[no-untyped-def]
    raw = RawBatch("telemetry", 3, np.arange(100, 100 + len(values), dtype=np.int64),
                   keys or [None] * len(values), values)
    return decode_batch(raw, TYPES, KEYS, CFG, now_ms=NOW)


def reason_of(value: bytes | None, key: bytes | None = None) -> str:
    out = decode([value], [key])
    assert len(out.oks) == 0 and len(out.errs) == 1
    return str(json.loads(out.errs[0].value)["reason"])


def test_valid_message_becomes_a_row() -> None:
    out = decode([good()])
    assert len(out.oks) == 1 and not out.errs
    b = out.oks
    assert b.device_ids == ["thermostat-1"] and b.ts[0] == 1_700_000_000_000
    assert b.sig_state[0] == SIG_OK and b.partition[0] == 3 and b.offset[0] == 100
    assert b.signals[0, 0] == 21.5


@pytest.mark.parametrize(("value", "reason"), [
    (None, "empty message"),
    (b"", "empty message"),
    (b"{not json", "malformed JSON"),
    (b"\xff\xfe{}", "malformed JSON"),
    (b"[1, 2]", "schema: Expected `object`"),
    (b'{"device_id": "a", "ts": 1}', "schema: Object missing required field"),
    (good().replace(b'"seq":1', b'"seq":"1"'), "Expected `int`, got `str` - at `$.seq`"),
    (good().replace(b'"seq":1', b'"seq":-5'), "at `$.seq`"),
    (good().replace(b'"seq":1', b'"seq":1e400'), "$.seq"),
    (good().replace(b'"thermostat"', b'"toaster"', 1), "unknown device type 'toaster'"),
    (good().replace(b'"heating":1.0', b'"heating":1e999'), "Number out of range - at `$.signals"),
    (good().replace(b'"heating":1.0', b'"heating":NaN'), "malformed JSON"),
    (good().replace(b'"heating":1.0', b'"warp":1.0'), "signal 'warp' is not defined"),
    (good(ts=NOW + 10**9), "in the future"),
    (b"{" + b'"x":' * 0 + b'"device_id":"' + b"a" * 5000 + b'"}', "exceeds pipeline.max_message_bytes"),
    (good().replace(b'"ts":1700000000000', b'"ts":"2023-11-14T22:13:20"'), "has no timezone"),
])
def test_bad_input_is_dead_lettered_with_a_precise_reason(value: bytes | None, reason: str) -> None:
    assert reason in reason_of(value)


def test_dead_letter_keeps_original_bytes_and_origin() -> None:
    out = decode([good(), b"\x00garbage\xff", good(seq=2)], [b"thermostat-1", b"k", b"thermostat-1"])
    assert len(out.oks) == 2
    dl = json.loads(out.errs[0].value)
    assert base64.b64decode(dl["value_b64"]) == b"\x00garbage\xff"
    assert (dl["topic"], dl["partition"], dl["offset"], dl["stage"]) == ("telemetry", 3, 101, "decode")
    assert dl["key"] == "k"


def test_key_must_match_device_id() -> None:
    assert "does not match device_id" in reason_of(good(), b"someone-else")


def test_rfc3339_timestamps_are_accepted() -> None:
    out = decode([good().replace(b'"ts":1700000000000', b'"ts":"2023-11-14T22:13:20Z"')])
    assert out.oks.ts[0] == 1_700_000_000_000


def test_signature_states() -> None:
    forged = good().replace(b'"temperature_c":21.5', b'"temperature_c":35.0')
    out = decode([good(), good(sign=False), forged])
    assert out.oks.sig_state.tolist() == [SIG_OK, SIG_MISSING, SIG_BAD]


def test_every_message_is_accounted_for() -> None:
    import random

    values = [good(seq=i, device=f"thermostat-{i % 7}") for i in range(500)]
    bad, n_bad = corrupt_some(values, 0.2, random.Random(3))
    out = decode(list(bad))
    assert n_bad > 50
    assert len(out.oks) + len(out.errs) == 500
    assert len(out.errs) >= n_bad - 5  # a few corruptions (e.g. no-op replace) stay valid


def test_split_by_shard_keeps_order_and_rows() -> None:
    out = decode([good(seq=i, device=f"thermostat-{i % 9}") for i in range(90)])
    parts = out.oks.split_by_shard()
    assert sum(len(p) for _, p in parts) == 90
    for shard, part in parts:
        assert (part.shard == shard).all()
        for d in set(part.device_ids):
            seqs = [s for s, dd in zip(part.seq.tolist(), part.device_ids, strict=True) if dd == d]
            assert seqs == sorted(seqs)
