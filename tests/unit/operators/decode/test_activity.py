"""Activity decoding: valid commands become rows routed like telemetry; bad ones dead letters with
the reason, never exceptions."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest

from twinguard.operators.batches import RawBatch
from twinguard.operators.decode.activity import decode_activity
from twinguard.operators.decode.telemetry import DecodeConfig

CFG = DecodeConfig(shards=8, max_message_bytes=4096, max_future_skew_ms=60_000)
NOW = 1_795_000_000_000
GOOD = {"device_id": "pump_plc-000007", "ts": NOW, "user": "op.jdoe", "action": "set",
        "params": {"valve_open_pct": 40}, "src_ip": "10.1.4.20"}


def raw(*values: bytes, keys: list[bytes | None] | None = None) -> RawBatch:
    return RawBatch("act", 3, np.arange(10, 10 + len(values)), keys or [None] * len(values),
                    list(values))


def test_valid_messages_become_rows_and_route_by_device_and_by_user() -> None:
    other = {**GOOD, "device_id": "thermostat-000001", "user": "op.x", "action": "login",
             "ts": "2026-11-01T10:15:00Z"}
    out = decode_activity(raw(json.dumps(GOOD).encode(), json.dumps(other).encode()), CFG, NOW)
    assert out.errs == [] and out.rejected == [False, False] and len(out.oks) == 2
    assert out.oks.params[0] == {"valve_open_pct": 40.0} and out.oks.offset == [10, 11]
    assert out.oks.ts[1] == int(datetime(2026, 11, 1, 10, 15, tzinfo=UTC).timestamp() * 1000)
    shards = dict(out.by_device(8))
    assert shards[str(zlib.crc32(b"pump_plc-000007") % 8)].device_ids[0] == "pump_plc-000007"
    users = out.by_user(8)
    assert sum(len(b) for _, b in users) == 2
    assert all(b.users[0] and (zlib.crc32(b.users[0].encode()) % 8) == int(k) for k, b in users)


@pytest.mark.parametrize(("doc", "reason"), [
    (b"{nope", "malformed JSON"),
    (json.dumps(GOOD).encode().replace(b"op.jdoe", b"op.\xff\xfe"), "malformed JSON"),  # bad UTF-8
    (b"", "empty message"),
    (json.dumps({**GOOD, "user": ""}).encode(), "schema"),
    (json.dumps({**GOOD, "params": {}}).encode(), "needs params"),
    (json.dumps({**GOOD, "params": {"valve_open_pct": "open"}}).encode(), "finite number"),
    (json.dumps({**GOOD, "ts": NOW + 3_600_000}).encode(), "in the future"),
    (json.dumps({**GOOD, "ts": "2026-11-26T10:15:00"}).encode(), "no timezone"),
])
def test_bad_messages_are_dead_lettered_with_the_reason(doc: bytes, reason: str) -> None:
    out = decode_activity(raw(doc), CFG, NOW)
    assert len(out.oks) == 0 and out.rejected == [True]
    dl = json.loads(out.errs[0].value)
    assert reason in dl["reason"] and dl["stage"] == "decode_activity"
    assert dl["topic"] == "act" and dl["partition"] == 3 and dl["offset"] == 10


def test_a_key_that_is_not_the_device_is_rejected() -> None:
    out = decode_activity(raw(json.dumps(GOOD).encode(), keys=[b"someone-else"]), CFG, NOW)
    assert "does not match device_id" in json.loads(out.errs[0].value)["reason"]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("user", "op\u001b[2J\u001b]0;pwned\u0007", "that is a name of letters, digits and . _ @ + - - at "
                                                "`$.user`"),
    ("user", "op.jdoe\n2 forged row", "that is a name of letters"),
    ("user", "u" * 129, "Expected `str` of length <= 128 - at `$.user`"),
    ("src_ip", "1" * 60_000, "Expected `str` of length <= 45 - at `$.src_ip`"),
    ("src_ip", "10.1.4.20\n", "that is an IPv4 (dotted quad, no leading zeros) or IPv6 address"),
    ("device_id", "pump_plc-000007\n", "that is a device id"),
])
def test_device_and_operator_strings_outside_their_patterns_are_dead_lettered(
        field: str, value: str, reason: str) -> None:
    big = DecodeConfig(shards=8, max_message_bytes=65_536, max_future_skew_ms=60_000)
    out = decode_activity(raw(json.dumps({**GOOD, field: value}).encode()), big, NOW)
    assert out.rejected == [True] and len(out.oks) == 0
    why = json.loads(out.errs[0].value)["reason"]
    assert reason in why and "regex" not in why and len(why) < 200, why
