"""Threat-intel table: parsing and rejects, IP/CIDR/firmware lookups, expiry, tombstones, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinguard.operators.intel.table import (
    IntelEntry,
    IntelFileError,
    IntelIndex,
    IntelRejectError,
    IntelTable,
    parse_intel,
)


def entry(indicator: str, kind: str = "ip", severity: str = "high", expires_at: int | None = None
          ) -> IntelEntry:
    msg: dict[str, object] = {"indicator": indicator, "kind": kind, "severity": severity}
    if expires_at is not None:
        msg["expires_at"] = expires_at
    parsed = parse_intel(json.dumps(msg).encode())
    assert parsed is not None
    return parsed


def test_exact_ip_and_most_specific_cidr_win() -> None:
    idx = IntelIndex.build([entry("203.0.113.7", severity="critical"),
                            entry("203.0.113.0/24", "cidr", "medium"),
                            entry("203.0.0.0/16", "cidr", "low")])
    assert idx.lookup_ip("203.0.113.7", 0).severity == "critical"  # type: ignore[union-attr]
    assert idx.lookup_ip("203.0.113.8", 0).severity == "medium"  # type: ignore[union-attr]
    assert idx.lookup_ip("203.0.9.9", 0).severity == "low"  # type: ignore[union-attr]
    assert idx.lookup_ip("203.1.0.1", 0) is None
    assert idx.lookup_ip("not-an-address", 0) is None


def test_cidr_host_bits_and_ipv6_are_normalised() -> None:
    idx = IntelIndex.build([entry("198.51.100.77/24", "cidr"), entry("2001:DB8::/32", "cidr"),
                            entry("2001:db8:0:0::1")])
    assert idx.lookup_ip("198.51.100.1", 0) is not None
    assert idx.lookup_ip("2001:db8:ffff::2", 0).kind == "cidr"  # type: ignore[union-attr]
    assert idx.lookup_ip("2001:DB8::1", 0).kind == "ip"  # type: ignore[union-attr]
    assert idx.lookup_ip("2001:db9::1", 0) is None
    assert idx.lookup_ip("198.51.101.1", 0) is None


def test_an_expired_entry_stops_matching_at_its_expiry_and_a_broader_one_takes_over() -> None:
    idx = IntelIndex.build([entry("192.0.2.5", severity="critical", expires_at=1_000),
                            entry("192.0.2.0/24", "cidr", "low")])
    assert idx.lookup_ip("192.0.2.5", 999).severity == "critical"  # type: ignore[union-attr]
    assert idx.lookup_ip("192.0.2.5", 1_000).severity == "low"  # type: ignore[union-attr]


def test_tombstone_removes_and_publish_drops_expired_entries() -> None:
    table = IntelTable([entry("192.0.2.5"), entry("192.0.2.6", expires_at=5_000)])
    assert table.current.lookup_ip("192.0.2.5", 0) is not None
    table.apply("192.0.2.5", parse_intel(b"", b"192.0.2.5"))  # tombstone: empty value, key kept
    assert table.current.lookup_ip("192.0.2.5", 0) is not None  # readers see it after publish
    table.publish(drop_expired_at=6_000)
    assert table.current.lookup_ip("192.0.2.5", 0) is None
    assert table.current.lookup_ip("192.0.2.6", 0) is None
    assert len(table.current) == 0


def test_firmware_per_type_before_global() -> None:
    idx = IntelIndex.build([entry("ip_camera:5.51.2", "firmware", "critical"),
                            entry("5.51.2", "firmware", "low")])
    assert idx.lookup_firmware("ip_camera", "5.51.2", 0).severity == "critical"  # type: ignore[union-attr]
    assert idx.lookup_firmware("thermostat", "5.51.2", 0).severity == "low"  # type: ignore[union-attr]
    assert idx.lookup_firmware("ip_camera", "5.55.1", 0) is None


def test_match_rows_checks_destination_then_source_at_each_rows_time() -> None:
    idx = IntelIndex.build([entry("203.0.113.0/24", "cidr", expires_at=2_000),
                            entry("198.51.100.9", severity="low")])
    src = ["10.0.0.1", "198.51.100.9", "10.0.0.3", None, "10.0.0.1"]
    dst = ["203.0.113.4", "10.0.0.10", None, "10.0.0.10", "203.0.113.4"]
    ts = np.array([1_000, 1_000, 1_000, 1_000, 3_000], dtype=np.int64)
    hits = idx.match_rows(src, dst, ts)
    assert [(h.row, h.address) for h in hits] == [(0, "203.0.113.4"), (1, "198.51.100.9")]
    assert IntelIndex.build([]).match_rows(src, dst, ts) == []


@pytest.mark.parametrize(("value", "key", "reason"), [
    (b"{oops", None, "malformed JSON"),
    (b'{"indicator": "x", "kind": "domain"}', None, "schema"),
    (b'{"indicator": "300.1.2.3", "kind": "ip"}', None, "not a valid ip"),
    (b'{"indicator": "10.0.0.0/33", "kind": "cidr"}', None, "not a valid cidr"),
    (b'{"indicator": "ip_camera:", "kind": "firmware"}', None, "firmware indicators are"),
    (b'{"indicator": "10.0.0.1", "kind": "ip"}', b"10.0.0.2", "does not match indicator"),
    (b"", None, "nothing to delete"),
])
def test_bad_intel_messages_are_rejected_with_a_reason(value: bytes, key: bytes | None,
                                                       reason: str) -> None:
    with pytest.raises(IntelRejectError, match=reason):
        parse_intel(value, key)


def test_file_loads_skipping_comments_and_names_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "intel.jsonl"
    good.write_text('# feed\n\n{"indicator": "192.0.2.1", "kind": "ip"}\n'
                    '{"indicator": "fw=1.0", "kind": "policy", "policy": {"anomaly_z": 3}}\n')
    table = IntelTable.from_file(good)
    assert len(table) == 2 and table.current.lookup_ip("192.0.2.1", 0) is not None
    assert "fw=1.0" in table.current.policies
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"indicator": "192.0.2.1", "kind": "ip"}\n{"indicator": 5}\n')
    with pytest.raises(IntelFileError, match=r"bad\.jsonl:2: schema"):
        IntelTable.from_file(bad)
    with pytest.raises(IntelFileError, match="does not exist"):
        IntelTable.from_file(tmp_path / "missing.jsonl")


def test_publish_validates_the_whole_feed_and_keys_by_normalised_indicator(tmp_path: Path) -> None:
    from twinguard.pipelines.cli import DEMO_INTEL
    from twinguard.pipelines.kafka.intel_publish import feed_messages, indicator_key

    items = feed_messages(DEMO_INTEL)
    assert len(items) == 6 and all(parse_intel(v, k) is not None for k, v in items)
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"indicator": "198.51.100.7/24", "kind": "cidr"}\n')
    assert feed_messages(feed)[0][0] == b"198.51.100.0/24"
    feed.write_text('{"indicator": "192.0.2.1", "kind": "ip"}\n{"indicator": "x", "kind": "ip"}\n')
    with pytest.raises(IntelFileError, match=r"feed\.jsonl:2: indicator 'x' is not a valid ip"):
        feed_messages(feed)
    assert indicator_key(" 2001:DB8::1 ") == b"2001:db8::1"
    assert indicator_key("198.51.100.7/24") == b"198.51.100.0/24"
    assert indicator_key("ip_camera:5.51.2") == b"ip_camera:5.51.2"


@pytest.mark.parametrize(("value", "reason"), [
    (json.dumps({"indicator": "192.0.2.9", "kind": "ip", "note": "N" * 5000}).encode(),
     "exceeds intel.max_record_bytes=4096"),
    (json.dumps({"indicator": "192.0.2.9", "kind": "ip", "note": "N" * 501}).encode(),
     "note of 501 characters exceeds intel.max_note_chars=500"),
    (b'{"indicator": "192.0.2.9", "kind": "ip", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     "nested more than"),
    (b'{"indicator": "0.0.0.0/0", "kind": "cidr"}', r"broader than /8 \(IPv4\)"),
    (b'{"indicator": "10.0.0.0/7", "kind": "cidr"}', r"broader than /8"),
    (b'{"indicator": "::/0", "kind": "cidr"}', r"broader than /32 \(IPv6\)"),
    (b'{"indicator": "2001:db8::/31", "kind": "cidr"}', r"broader than /32"),
])
def test_oversized_deep_and_over_broad_intel_is_rejected(value: bytes, reason: str) -> None:
    with pytest.raises(IntelRejectError, match=reason):
        parse_intel(value)


def test_broad_networks_are_accepted_at_the_limit_or_when_allowed() -> None:
    from twinguard.operators.intel.table import IntelLimits

    assert parse_intel(b'{"indicator": "10.0.0.0/8", "kind": "cidr"}') is not None
    assert parse_intel(b'{"indicator": "2001:db8::/32", "kind": "cidr"}') is not None
    allowed = parse_intel(b'{"indicator": "0.0.0.0/0", "kind": "cidr"}',
                          limits=IntelLimits(allow_broad_cidrs=True))
    assert allowed is not None and allowed.indicator == "0.0.0.0/0"


def test_a_feed_with_an_over_broad_network_is_refused_before_publishing(tmp_path: Path) -> None:
    from twinguard.pipelines.kafka.intel_publish import feed_messages

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"indicator": "192.0.2.1", "kind": "ip"}\n'
                    '{"indicator": "0.0.0.0/0", "kind": "cidr"}\n')
    with pytest.raises(IntelFileError, match=r"feed\.jsonl:2: cidr 0\.0\.0\.0/0 is broader"):
        feed_messages(feed)
