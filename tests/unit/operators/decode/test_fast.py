"""The columnar fast path (Numba parser + reference fallback) must equal the reference decoder:
same rows, same columns, same dead letters and reasons, for valid and invalid messages alike."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.decoding import DECODE_CFG, NOW, assert_same, both, signed, thermostat
from tests.support.devices import KEYS, TYPES
from twinguard.operators.batches import RawBatch
from twinguard.operators.decode import fast as fastdecode
from twinguard.operators.decode import jsonscan as fj
from twinguard.operators.decode.telemetry import decode_batch as reference
from twinguard.operators.integrity.signatures import SIG_OK
from twinguard.schemas.messages import Auth, Net, Telemetry, canonical_bytes

# without the JIT the parser runs as Python: fewer examples keep that CI run short
EXAMPLES = 30 if os.environ.get("NUMBA_DISABLE_JIT") == "1" else 250
EXAMPLE_FILE = Path(__file__).parents[4] / "schemas" / "examples" / "telemetry.json"


def parsed_status(values: list[bytes], now: int = NOW) -> list[int]:
    raw = RawBatch("t", 0, np.arange(len(values), dtype=np.int64), [None] * len(values), values)
    p = fastdecode.Parsed.of(raw, fastdecode._tables(TYPES), DECODE_CFG, now)
    return p.status.tolist()


# ---- generated messages: mostly the valid shape (signed, canonical), with every kind of deviation

def mostly(good: st.SearchStrategy[object], bad: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """`good` nine times in ten: most generated messages are valid, so the fast path is exercised."""
    return st.integers(0, 9).flatmap(lambda k: good if k else bad)


type_names = mostly(st.sampled_from(list(TYPES.index)), st.sampled_from(["toaster", ""]))
device_ids = mostly(st.from_regex(r"[A-Za-z0-9._:/-]{1,12}", fullmatch=True),
                    st.one_of(st.text(max_size=6), st.just("x" * 129), st.integers()))
numbers = mostly(
    st.one_of(st.floats(min_value=-1e6, max_value=1e6).map(lambda x: round(x, 6)),
              st.integers(min_value=-(2**40), max_value=2**40),
              st.sampled_from([0.0, -0.0, 0, 1e-7, 1e16, 2.5e-3, 1e12, -1e12, 1000000000001,
                               1e13, -1e20, 9e37, 1e40, -1e50])),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=2),
              st.sampled_from([5e-324, 1.7976931348623157e308, 123456789012345678, -0, 2**64])))
counts = mostly(st.integers(min_value=0, max_value=2**20),
                st.one_of(st.integers(min_value=-3, max_value=2**54), st.none(), st.just(1.5),
                          st.text(max_size=2), st.just(2**53), st.just(2**53 + 1)))
ports = mostly(st.one_of(st.integers(0, 65535), st.none()), st.sampled_from([65536, -1, "443"]))
strings = mostly(st.one_of(st.none(), st.sampled_from(["10.0.0.1", "10.0.0.2", "", "ops"])),
                 st.one_of(st.sampled_from(['a"b', "\u00e9", "x\\y", "tab\t"]), st.text(max_size=8),
                           st.integers()))
# the patterned strings (twinguard.schemas.fields): near misses of each shape
addresses = mostly(st.one_of(st.none(), st.ip_addresses(v=4).map(str)),
                   st.one_of(st.ip_addresses(v=6).map(str), strings,
                             st.sampled_from(["01.2.3.4", "1.2.3", "256.0.0.1", "1.2.3.4.5", "1.2.3.",
                                              "::1", "1:2:3:4:5:6:1.2.3.4", "1" * 60, "1.2.3.4 "]),
                             st.from_regex(r"[0-9.]{1,16}", fullmatch=True)))
principals = mostly(st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._@+-]{1,12}", fullmatch=True)),
                    st.one_of(strings, st.just("n" * 129), st.just("a b"), st.just("\u001b[2J")))
versions = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,8}", fullmatch=True),
                     st.sampled_from(["-1.0", "1.0:x", "x" * 65, "1 0", "\u202e1.0", "+dbg"]))
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                           timezone(timedelta(hours=-23, minutes=-59))])


@st.composite
def timestamps(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from([0, 0, 0, 1, 2, 2, 3]))
    if kind == 0:
        return draw(st.integers(min_value=NOW - 10**10, max_value=NOW + 2 * 86_400_000))
    if kind == 1:
        return draw(st.one_of(st.integers(min_value=-5, max_value=2**63), st.floats(), st.none()))
    ms = draw(st.integers(NOW - 10**11, NOW + 2 * 86_400_000))
    dt = datetime.fromtimestamp(ms / 1000, tz=draw(offsets)) + timedelta(
        microseconds=draw(st.sampled_from([0, 1, 999_999, 123_456])))
    text = dt.isoformat()
    if kind == 3:  # fractions of other lengths, naive, Z spelling, garbage
        frac = draw(st.sampled_from(["", ".5", ".1234567", ".123456789", ".12"]))
        text = dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + draw(
            st.sampled_from(["Z", "z", "+01:00", "-00:00", "", "+0100", "+24:00"]))
    return text


def members(draw: st.DrawFn, names: list[str], value: st.SearchStrategy[object],
            special: dict[str, st.SearchStrategy[object]]) -> dict[str, object]:
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
    return {k: draw(special.get(k, value)) for k in chosen}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    t = draw(type_names)
    names = list(TYPES.signal_index[TYPES.index[t]]) if t in TYPES.index else ["temperature_c"]
    sig_names = draw(mostly(st.lists(st.sampled_from(names), max_size=4, unique=True),
                            st.lists(st.sampled_from([*names, "bogus"]), max_size=5)))
    doc: dict[str, object] = {
        "device_id": draw(device_ids), "type": t, "ts": draw(timestamps()),
        "seq": draw(counts), "signals": {n: draw(numbers) for n in sig_names}}  # type: ignore[union-attr]
    if draw(st.booleans()):
        keys = ["src_ip", "dst_ip", "dst_port", "bytes_in", "bytes_out", "packets_in",
                "packets_out", "connections"]
        doc["net"] = members(draw, keys, counts, {"src_ip": addresses, "dst_ip": addresses,
                                               "dst_port": ports})
    if draw(st.booleans()):
        doc["auth"] = members(draw, ["failures", "successes", "principal"], counts, {"principal": principals})
    if draw(st.booleans()):
        firmware = sorted(TYPES.firmware[TYPES.index[t]]) if t in TYPES.index else []
        doc["fw"] = draw(mostly(st.sampled_from([*firmware, "9.9.9", None]),
                                st.one_of(strings, versions)))
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.sampled_from(["extra", "net", "auth", "sig"]))] = draw(
            st.sampled_from([None, 1, [], {}, "x"]))
    return doc


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    doc = draw(documents())
    try:
        ev: Telemetry | None = msgspec.convert(doc, Telemetry)
    except (msgspec.ValidationError, TypeError, ValueError):
        ev = None
    sign = draw(st.sampled_from(["good", "good", "bad", "upper", "empty", "none"]))
    if ev is not None and sign in ("good", "upper", "bad"):
        sig = KEYS.sign(ev.device_id, canonical_bytes(ev))
        doc["sig"] = sig.upper() if sign == "upper" else ("0" * 64 if sign == "bad" else sig)
    elif sign == "empty":
        doc["sig"] = ""
    layout = draw(st.sampled_from(["sorted", "sorted", "spaced", "unsorted"]))
    if layout == "sorted":
        value = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()
    elif layout == "spaced":
        value = json.dumps(doc, sort_keys=True, indent=draw(st.sampled_from([None, 1])),
                           allow_nan=True).encode()
    else:
        value = json.dumps(doc, separators=(",", ":"), allow_nan=True, ensure_ascii=False).encode()
    if draw(st.integers(0, 19)) == 0:  # byte-level damage
        cut = draw(st.integers(0, len(value)))
        value = value[:cut] + draw(st.sampled_from([b"", b" ", b"x", b"}", b"\xff"])) + value[cut:]
    device = doc["device_id"]
    key = draw(st.sampled_from([None, "own", "other"]))
    kbytes = None if key is None else (str(device).encode() if key == "own" else b"someone-else")
    return value, kbytes


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=12))
def test_fast_path_equals_reference_on_generated_messages(msgs: list[tuple[bytes, bytes | None]]) -> None:
    assert_same([v for v, _ in msgs], [k for _, k in msgs])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=200), st.none()), max_size=8))
def test_fast_path_equals_reference_on_arbitrary_bytes(values: list[bytes | None]) -> None:
    assert_same(list(values))


# ---- the fast path is really taken for what producers send


def test_canonical_signed_messages_take_the_fast_path_with_valid_signatures() -> None:
    values = [signed(thermostat(seq=i, device_id=f"thermostat-{i % 3}")) for i in range(6)]
    assert parsed_status(values) == [fj.OK] * 6
    out = assert_same(values)
    assert out.oks.sig_state.tolist() == [SIG_OK] * 6
    assert out.oks.device_ids == [f"thermostat-{i % 3}" for i in range(6)]


def test_the_schema_example_parses_on_the_fast_path() -> None:
    value = EXAMPLE_FILE.read_bytes()
    sent_at = json.loads(value)["ts"]
    assert parsed_status([value], now=sent_at) == [fj.OK]  # its placeholder sig then falls back
    assert parsed_status([value]) == [fj.FALLBACK]  # NOW is before it: "in the future"
    assert_same([value], [b"smart_meter-000042"])


def test_rfc3339_and_number_forms_match_the_reference() -> None:
    forms = [b'"2023-11-14T22:13:20Z"', b'"2023-11-14T22:13:20.5+05:30"',
             b'"2023-11-14T22:13:20.123456-01:00"', b'"2020-02-29T00:00:00.000001Z"',
             b'"2023-02-29T00:00:00Z"', b'"2023-11-14T22:13:20.1234567Z"']
    base = signed(thermostat())
    ts = b'"ts":' + str(NOW - 5000).encode()
    values = [base.replace(ts, b'"ts":' + f) for f in forms]
    values += [base.replace(b'"temperature_c":21.25', b'"temperature_c":' + x)
               for x in (b"-0.0", b"-0", b"1e-7", b"2.5E+3", b"12345678901234567890", b"0.1e1", b"1e400",
                         b"01", b"1.", b"-", b"0.000000000000000000000001")]
    assert_same(values)
    assert parsed_status(values[:4]) == [fj.OK] * 4


def test_signals_beyond_the_magnitude_bound_are_dead_lettered_by_both_decoders() -> None:
    base = signed(thermostat())
    values = [base.replace(b'"temperature_c":21.25', b'"temperature_c":' + x)
              for x in (b"1e12", b"-1e12", b"1000000000001", b"1e13", b"-9e37", b"1e40", b"-1e50",
                        b"1.7976931348623157e308")]
    out = assert_same(values)
    assert out.rejected == [False, False] + [True] * 6
    assert all("beyond" in json.loads(e.value)["reason"] for e in out.errs)


def test_deep_nesting_is_dead_lettered_by_both_decoders_not_a_recursion_error() -> None:
    base = signed(thermostat())
    deep = b"[" * 300 + b"]" * 300  # within the 1 KB test size limit
    values = [base.replace(b'"seq":1', b'"seq":1,"x":' + deep),
              base.replace(b'"seq":1', b'"seq":1,"net":{"extra":' + deep + b"}"),
              base.replace(b'"seq":1', b'"seq":1,"x":"' + b"[" * 300 + b'"')]  # brackets in a string
    out = assert_same(values)
    assert out.rejected == [True, True, False]  # a string full of brackets is not nesting
    reasons = [json.loads(e.value)["reason"] for e in out.errs]
    assert all("nested more than" in r for r in reasons), reasons


def test_unknown_keys_escapes_and_duplicates_fall_back_to_the_reference() -> None:
    base = signed(thermostat())
    values = [base.replace(b'"seq":1', b'"seq":1,"extra":[1,{"a":null}]'),
              base.replace(b'"thermostat-1"', b'"thermostat\\u002d1"'),
              base.replace(b'"seq":1', b'"seq":1,"seq":2'),
              base.replace(b'"heating":1.0', b'"heating":1.0,"heating":0.0')]
    assert parsed_status(values) == [fj.FALLBACK] * 4
    assert_same(values, [b"thermostat-1"] * 4)


def test_batches_either_side_of_the_small_batch_threshold_decode_alike() -> None:
    for n in (fastdecode.FAST_FROM - 1, fastdecode.FAST_FROM):
        values = [signed(thermostat(seq=i)) for i in range(n)] + [b"{}"]
        raw = RawBatch("t", 0, np.arange(n + 1, dtype=np.int64), [None] * (n + 1), values)
        ref = reference(raw, TYPES, KEYS, DECODE_CFG, NOW)
        fast = fastdecode.decode_batch(raw, TYPES, KEYS, DECODE_CFG, NOW)
        assert fast.oks.seq.tolist() == ref.oks.seq.tolist() == list(range(n))
        assert fast.errs == ref.errs and fast.rejected == ref.rejected


def test_batch_of_only_rejects_and_an_empty_batch() -> None:
    assert_same([None, b"", b"[]", b"{}"])
    ref, fast = both([])
    assert len(fast.oks) == 0 and not fast.errs


def test_intern_columns_gives_equal_bytes_equal_codes() -> None:
    buf = np.frombuffer(b"abcabcabxab", dtype=np.uint8)
    spans = np.array([[0, 3, 9, 11], [3, 6, 0, 3], [6, 8, -1, -1], [9, 11, 3, 6], [-1, -1, 0, 0],
                      [0, 0, 6, 8]], dtype=np.int64)
    codes, reps, counts = fj.intern_columns(buf, spans, np.array([0, 2], dtype=np.int64))
    # column 0: "abc", "abc", "ab", "ab", None, ""; column 2: "ab", "abc", None, "abc", "", "ab"
    assert codes[:, 0].tolist() == [0, 0, 1, 1, -1, 2]
    assert codes[:, 1].tolist() == [0, 1, -1, 1, 2, 0]
    assert counts.tolist() == [3, 3] and reps.tolist() == [0, 2, 5, 0, 1, 4]


def test_invalid_utf8_inside_a_string_is_a_dead_letter_not_a_crash() -> None:
    value = signed(thermostat()).replace(b'"thermostat-1"', b'"thermostat-\xff"')
    out = assert_same([value])
    assert len(out.errs) == 1 and "malformed JSON" in json.loads(out.errs[0].value)["reason"]


def test_addresses_firmware_and_principals_out_of_contract_are_dead_lettered_alike() -> None:
    ok = [signed(thermostat(net=Net(src_ip="10.1.2.3", dst_ip="10.0.0.10"), fw="4.2.0",
                            auth=Auth(1, 0, "op.jdoe@site-2")))]
    base = signed(thermostat(net=Net(src_ip="10.1.2.3"), fw="4.2.0", auth=Auth(1, 0, "root")))
    hostile = [base.replace(b'"10.1.2.3"', b'"' + b"1" * 600 + b'"'),
               base.replace(b'"10.1.2.3"', b'"010.1.2.3"'),
               base.replace(b'"10.1.2.3"', b'"10.1.2.3\\n"'),
               base.replace(b'"4.2.0"', b'"4.2.0\\u001b]0;pwned\\u0007"'),
               base.replace(b'"4.2.0"', b'"4.2.0 | forged row"'),
               base.replace(b'"root"', b'"' + b"r" * 129 + b'"'),
               base.replace(b'"root"', b'"ro\\u202eot"')]
    assert parsed_status(ok) == [fj.OK]
    assert parsed_status(hostile) == [fj.FALLBACK] * len(hostile)
    out = assert_same(ok + hostile, [b"thermostat-1"] * (len(hostile) + 1))
    assert len(out.oks) == 1 and out.oks.principals == ["op.jdoe@site-2"]
    reasons = [json.loads(e.value)["reason"] for e in out.errs]
    assert reasons[0] == "schema: Expected `str` of length <= 45 - at `$.net.src_ip`"
    assert "that is an IPv4 (dotted quad, no leading zeros) or IPv6 address - at `$.net.src_ip`" \
        in reasons[1]
    assert all("regex" not in r and len(r) < 200 for r in reasons), reasons
    assert [r.rsplit("at ", 1)[1] for r in reasons[3:]] == ["`$.fw`", "`$.fw`", "`$.auth.principal`",
                                                          "`$.auth.principal`"]


def test_ipv6_addresses_take_the_reference_and_are_accepted() -> None:
    values = [signed(thermostat(net=Net(src_ip=a))) for a in ("fd00::1", "::ffff:10.1.2.3")]
    assert parsed_status(values) == [fj.FALLBACK] * 2
    assert assert_same(values).oks.src_ips == ["fd00::1", "::ffff:10.1.2.3"]
