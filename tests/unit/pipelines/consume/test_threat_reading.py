"""The threat reader's pure parts: `--since` parsing, bounded de-duplication, filters."""

from __future__ import annotations

import pytest

from tests.support.threats import threat_event
from twinguard.pipelines.consume.command import parse_since, row
from twinguard.pipelines.consume.reader import SeenIds, ThreatFilter

NOW = 1_750_000_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", NOW - 90_000), ("15m", NOW - 900_000), ("2h", NOW - 7_200_000),
    ("1d", NOW - 86_400_000), ("1749999999000", 1_749_999_999_000),
    ("2025-06-15T15:06:40Z", NOW), ("2025-06-15T17:06:40+02:00", NOW),
])
def test_since_accepts_ages_epoch_ms_and_iso_times(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


def test_since_says_what_it_expects() -> None:
    with pytest.raises(ValueError, match="expected an age"):
        parse_since("last tuesday", NOW)


def test_seen_ids_forget_the_oldest_beyond_capacity() -> None:
    seen = SeenIds(capacity=2)
    assert [seen.first_time(i) for i in "aab"] == [True, False, True]
    assert seen.first_time("c") and seen.first_time("a")  # "a" was forgotten
    assert not seen.first_time("c")


def test_filter_keeps_at_least_the_severity_asked() -> None:
    high = ThreatFilter(min_severity="high")
    assert high.matches(threat_event("x", "d1", severity="critical"))
    assert not high.matches(threat_event("x", "d1", severity="medium"))
    with pytest.raises(ValueError, match="not one of low, medium"):
        ThreatFilter(min_severity="urgent")


def test_table_row_escapes_device_text() -> None:
    line = row(threat_event("x", "d1", reason="note\x1b[2J\u202eevil"))
    assert "\x1b" not in line and "\u202e" not in line and "\\x1b[2J\\u202eevil" in line
