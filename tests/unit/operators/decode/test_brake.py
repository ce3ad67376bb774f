"""The dead-letter brake: one misbehaving key is quarantined, a broken partition stops loudly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.decoding import both, signed, thermostat
from twinguard.operators.batches import RawBatch
from twinguard.operators.decode.brake import (
    BrakeConfig,
    DeadLetterBrakeError,
    RejectBrake,
    mark_quarantined,
)
from twinguard.operators.decode.telemetry import dead_letter


def many_keys(n: int) -> list[bytes | None]:
    return [f"dev-{i}".encode() for i in range(n)]


def test_a_partition_of_garbage_across_many_keys_stops_with_a_clear_message() -> None:
    brake = RejectBrake(BrakeConfig(max_reject_ratio=0.5, window=100, max_consecutive=10_000))
    brake.observe("t", 0, many_keys(99), [True] * 40 + [False] * 59, "x")  # 40% rejects: fine
    mostly_bad = both([b"garbage"] * 70 + [signed(thermostat())] * 30)[0]
    with pytest.raises(DeadLetterBrakeError, match=r"t\[1\].*70% of the last 100.*malformed JSON"):
        brake.observe("t", 1, many_keys(100), mostly_bad.rejected, mostly_bad.last_reason)
    with pytest.raises(DeadLetterBrakeError, match="in a row"):
        RejectBrake(BrakeConfig(max_consecutive=10)).observe("t", 2, many_keys(10), [True] * 10,
                                                              "bad")


def test_a_garbage_flood_on_one_key_is_quarantined_and_the_partition_runs_on() -> None:
    brake = RejectBrake(BrakeConfig(window=1000, max_consecutive=50, quarantine_after=20))
    flood = [b"dev-victim"] * 900 + many_keys(100)
    notes = brake.observe("t", 0, flood, [True] * 900 + [False] * 100, "malformed JSON")
    # the first 19 rejects count as usual, every later one is marked quarantined
    assert [j for j, _ in notes] == list(range(19, 900))
    assert "quarantined key 'dev-victim'" in notes[0][1] and "t[0]" in notes[0][1]
    assert brake.quarantined("t", 0) == ["'dev-victim'"]


def test_quarantine_lasts_while_the_key_misbehaves_and_is_released_after() -> None:
    brake = RejectBrake(BrakeConfig(window=100, quarantine_after=10, max_consecutive=10_000))
    brake.observe("t", 0, [b"k"] * 100, [True] * 100, "bad")  # window 1: quarantined
    assert brake.quarantined("t", 0) == ["'k'"]
    notes = brake.observe("t", 0, [b"k"] * 100, [True] * 20 + [False] * 80, "bad")  # still bad
    assert len(notes) == 20 and brake.quarantined("t", 0) == ["'k'"]
    brake.observe("t", 0, [b"k"] * 100, [True] * 2 + [False] * 98, "bad")  # behaves
    assert brake.quarantined("t", 0) == []


def test_a_quarantined_keys_valid_messages_still_count_as_accepted() -> None:
    """Keys are not authenticated: quarantine labels rejects only, it never drops a message."""
    brake = RejectBrake(BrakeConfig(window=10_000, quarantine_after=5, max_consecutive=10))
    rejected = [True, False] * 50
    notes = brake.observe("t", 0, [b"victim"] * 100, rejected, "bad")
    assert len(notes) == 50 - 4  # only rejects are noted; the 50 valid ones are untouched


def test_many_keys_each_below_the_quarantine_limit_still_stop_a_broken_partition() -> None:
    brake = RejectBrake(BrakeConfig(window=10_000, quarantine_after=100, max_consecutive=500,
                                    min_keys=10))
    keys = [f"k{i % 20}".encode() for i in range(499)]
    brake.observe("t", 0, keys, [True] * 499, "bad")
    with pytest.raises(DeadLetterBrakeError, match="500 messages in a row"):
        brake.observe("t", 0, [b"k3"], [True], "bad")


def test_hostile_keys_do_not_grow_the_table_beyond_its_bound() -> None:
    brake = RejectBrake(BrakeConfig(window=1_000_000, max_keys=50, max_consecutive=10**9,
                                    max_reject_ratio=1.0))
    huge = [bytes([i % 256]) * 100_000 + str(i).encode() for i in range(200)]
    brake.observe("t", 0, huge, [True] * 200, "bad")
    counts = brake.counts[("t", 0)]
    assert len(counts.per_key) == 50 and max(map(len, counts.per_key)) <= 256


def test_quarantined_dead_letters_say_so_and_keep_their_reason() -> None:
    raw = RawBatch("t", 0, np.arange(3, dtype=np.int64), [b"a\x1b[2J", b"b", b"c"],
                   [b"x", b"y", b"z"])
    errs = [dead_letter(raw, i, "decode", f"reason {i}", 0) for i in range(3)]
    out = mark_quarantined(errs, [(1, "quarantined key 'b'")])
    reasons = [json.loads(m.value)["reason"] for m in out]
    assert reasons == ["reason 0", "quarantined key 'b'; reason 1", "reason 2"]
    assert out[0] is errs[0] and out[1].key == errs[1].key


def test_disabled_brake_neither_stops_nor_quarantines() -> None:
    brake = RejectBrake(BrakeConfig(enabled=False, max_consecutive=1, quarantine_after=1))
    assert brake.observe("t", 0, [b"k"] * 10, [True] * 10, "bad") == []
