"""The batch HMAC-SHA256 (native OpenSSL loop and its hashlib fallback) against Python's `hmac`:
random keys (longer than a block too) and messages, every length around SHA-256's padding boundaries,
tampered bytes; and whole-batch signature verdicts equal to the reference decoder's on both paths."""

from __future__ import annotations

import hmac

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.decoding import assert_same, signed, thermostat
from twinguard.operators.decode import fast as fastdecode
from twinguard.operators.integrity import native_hmac
from twinguard.operators.integrity.signatures import SIG_BAD, SIG_OK, KeyRing

PATHS = [pytest.param(True, id="native", marks=pytest.mark.skipif(
             not native_hmac.AVAILABLE, reason="OpenSSL SHA256_* not callable here")),
         pytest.param(False, id="hashlib")]


@pytest.fixture(params=PATHS)
def native(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(native_hmac, "AVAILABLE", request.param)
    return bool(request.param)


def batch_hmac(ring: KeyRing, devices: list[str], msgs: list[bytes], codes: list[int],
               cuts: list[tuple[int, bytes]] | None = None) -> list[bytes]:
    """`fastdecode.hmacs` of msgs packed in one buffer; cuts[j] = (position, bytes) inserts bytes
    into message j that the span pair must skip (as the `sig` member of a signed message)."""
    parts, spans, at = [], [], 0
    for j, m in enumerate(msgs):
        pos, extra = cuts[j] if cuts else (len(m), b"")
        pos = min(pos, len(m))
        parts.append(m[:pos] + extra + m[pos:])
        spans.append((at, at + pos, at + pos + len(extra), at + len(m) + len(extra)))
        at += len(m) + len(extra)
    buf = np.frombuffer(b"".join(parts), dtype=np.uint8)
    out = fastdecode.hmacs(buf, np.array(spans, dtype=np.int64).reshape(-1, 4),
                           np.array(codes, dtype=np.int64), devices, ring)
    assert out.shape == (len(msgs), 32) and out.dtype == np.uint8
    return [bytes(row) for row in out]


def reference(ring: KeyRing, devices: list[str], msgs: list[bytes], codes: list[int]) -> list[bytes]:
    return [hmac.digest(ring.key(devices[c]), m, "sha256") for c, m in zip(codes, msgs, strict=True)]


def test_every_length_across_three_blocks(native: bool) -> None:
    ring = KeyRing(b"m", {"a": b"k" * 32, "b": bytes(range(64)), "c": b"", "d": b"x" * 100})
    devices = ["a", "b", "c", "d"]
    msgs = [bytes((7 * i + j) % 256 for j in range(i)) for i in range(200)]
    codes = [i % 4 for i in range(200)]
    assert batch_hmac(ring, devices, msgs, codes) == reference(ring, devices, msgs, codes)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=150), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=700), st.integers(0, 700),
                          st.binary(max_size=80)), max_size=20))
def test_matches_hmac_for_random_keys_and_messages(
        keys: list[bytes], rows: list[tuple[int, bytes, int, bytes]]) -> None:
    ring = KeyRing(b"master", {f"d{i}": k for i, k in enumerate(keys)})
    devices = [f"d{i}" for i in range(len(keys))] + ["derived"]  # the last from the master key
    codes = [c % len(devices) for c, _, _, _ in rows]
    msgs = [m for _, m, _, _ in rows]
    cuts = [(pos, extra) for _, _, pos, extra in rows]
    want = reference(ring, devices, msgs, codes)
    for native in (True, False):
        if native and not native_hmac.AVAILABLE:
            continue
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(native_hmac, "AVAILABLE", native)
            assert batch_hmac(ring, devices, msgs, codes, cuts) == want


def test_one_flipped_bit_changes_the_digest(native: bool) -> None:
    ring = KeyRing(b"master")
    msg = bytearray(b'{"device_id":"pump-1","seq":5}')
    good = batch_hmac(ring, ["pump-1"], [bytes(msg)], [0])[0]
    msg[10] ^= 1
    assert batch_hmac(ring, ["pump-1"], [bytes(msg)], [0])[0] != good


def test_cached_key_states_survive_new_devices_and_a_full_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    if not native_hmac.AVAILABLE:
        pytest.skip("OpenSSL SHA256_* not callable here")
    monkeypatch.setattr("twinguard.operators.integrity.signatures.STATE_CACHE_DEVICES", 100)
    ring = KeyRing(b"master")
    rows, table = ring.hmac_states(["a", "b", "a"])
    assert rows[0] == rows[2] != rows[1]
    for batch in range(5):  # grows, then starts over at 100 devices
        devices = [f"dev-{batch}-{i}" for i in range(60)] + ["a"]
        msgs, codes = [b"payload-%d" % i for i in range(61)], list(range(61))
        assert batch_hmac(ring, devices, msgs, codes) == reference(ring, devices, msgs, codes)
    assert len(ring._state_rows) <= 100 + 61
    again, fresh = ring.hmac_states(["a", "b"])
    np.testing.assert_array_equal(table[rows[:2]], fresh[again])  # the old (rows, table) is intact


def test_decode_verdicts_equal_the_reference_with_tampered_messages(native: bool) -> None:
    values = [signed(thermostat(seq=i, device_id=f"thermostat-{i % 5}")) for i in range(40)]
    values[3] = values[3].replace(b"21.25", b"21.26")  # tampered payload
    at = values[7].index(b'"sig":"') + 7  # altered signature: its first hex digit
    values[7] = values[7][:at] + (b"0" if values[7][at:at + 1] != b"0" else b"1") + values[7][at + 1:]
    values[9] = values[9].replace(b'"seq":9', b'"seq":10')  # replayed with a new seq
    out = assert_same(values)
    states = out.oks.sig_state.tolist()
    assert states.count(SIG_OK) == len(states) - 3 and states.count(SIG_BAD) == 3
