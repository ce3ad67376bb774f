"""Property-based: whatever bytes arrive, decoding never crashes and never loses a message."""

from __future__ import annotations

import json
import math

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.devices import KEYS, TYPES
from twinguard.operators.batches import RawBatch
from twinguard.operators.decode.telemetry import DecodeConfig, decode_batch

CFG = DecodeConfig(shards=4, max_message_bytes=2048, max_future_skew_ms=86_400_000)
NOW = 1_700_000_000_000

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
signal_names = st.sampled_from(["temperature_c", "setpoint_c", "humidity_pct", "heating", "bogus"])
telemetry_like = st.fixed_dictionaries(
    {"device_id": st.one_of(st.text(max_size=12), st.integers()),
     "type": st.sampled_from(["thermostat", "smart_meter", "toaster", ""]),
     "ts": st.one_of(st.integers(min_value=-5, max_value=NOW * 3), st.text(max_size=25),
                     st.just("2023-11-14T22:13:20Z"), st.floats()),
     "seq": st.one_of(st.integers(min_value=-3, max_value=2**64), st.text(max_size=3)),
     "signals": st.dictionaries(signal_names, st.floats(allow_nan=True, allow_infinity=True)
                                | st.integers(min_value=-(2**64), max_value=2**64), max_size=5)},
    optional={"net": json_value, "auth": json_value, "fw": json_value, "sig": json_value,
              "extra": json_value})


def encode(doc: object) -> bytes:
    # Python's json writes NaN/Infinity (invalid JSON) -- exactly the garbage we want to see
    return json.dumps(doc, allow_nan=True).encode()


def check(values: list[bytes | None]) -> None:
    raw = RawBatch("t", 0, np.arange(len(values), dtype=np.int64), [None] * len(values), values)
    out = decode_batch(raw, TYPES, KEYS, CFG, now_ms=NOW)
    assert len(out.oks) + len(out.errs) == len(values)  # never silence
    for m in out.errs:
        dl = msgspec.json.decode(m.value)
        assert dl["reason"] and dl["stage"] == "decode"
    assert np.isfinite(out.oks.ts).all() and (out.oks.ts <= NOW + CFG.max_future_skew_ms).all()
    finite_or_missing = np.isfinite(out.oks.signals) | np.isnan(out.oks.signals)
    assert finite_or_missing.all()
    for row in out.oks.signals:
        assert not any(math.isinf(v) for v in row)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_bytes(values: list[bytes]) -> None:
    check(list(values))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(telemetry_like, min_size=1, max_size=20))
def test_telemetry_shaped_documents(docs: list[dict[str, object]]) -> None:
    check([encode(d) for d in docs])


@settings(max_examples=100, deadline=None)
@given(st.lists(json_value, max_size=10), st.integers(min_value=2000, max_value=5000))
def test_oversized_and_arbitrary_json(docs: list[object], pad: int) -> None:
    check([encode(d) for d in docs] + [b'{"device_id":"' + b"a" * pad + b'"}'])
