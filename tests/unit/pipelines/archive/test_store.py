"""The archive's files and manifest: rows written once across an interrupted flush, the size bound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from twinguard.pipelines.archive.records import FEATURE_PREFIX, ArchiveRejectError, to_row
from twinguard.pipelines.archive.store import ArchiveStore, Manifest, read_kind
from twinguard.schemas.features import FEATURE_NAMES

EXAMPLE = Path(__file__).parents[4] / "schemas" / "examples" / "windows.json"
DAY_MS = 86_400_000


def _feedback(i: int, day: int) -> dict[str, Any]:
    return {"threat_id": f"t{i}", "verdict": "true_positive", "analyst": "a", "ts": day * DAY_MS,
            "threat": None, "note": "", "_partition": 0, "_offset": i}


def test_a_window_record_becomes_a_row_with_one_column_per_feature() -> None:
    date, row = to_row("windows", EXAMPLE.read_bytes())
    assert date == "2025-11-26"
    assert row[FEATURE_PREFIX + FEATURE_NAMES[0]] == 48.0 and row["device_type"] == "smart_meter"


@pytest.mark.parametrize(("kind", "value", "reason"), [
    ("feedback", b"{nope", "malformed JSON"),
    ("feedback", b'{"threat_id": "t", "verdict": "maybe", "analyst": "a", "ts": 1}', "schema"),
    ("windows", b"", "empty windows message"),
])
def test_records_that_cannot_be_stored_say_why(kind: str, value: bytes, reason: str) -> None:
    with pytest.raises(ArchiveRejectError, match=reason):
        to_row(kind, value)


def test_unknown_features_are_refused_not_dropped() -> None:
    doc = json.loads(EXAMPLE.read_text())
    doc["features"]["invented"] = 1.0
    with pytest.raises(ArchiveRejectError, match="invented"):
        to_row("windows", json.dumps(doc).encode())


def test_files_of_a_flush_killed_before_its_manifest_are_removed_and_rewritten(tmp_path: Path
                                                                               ) -> None:
    store = ArchiveStore(tmp_path)
    store.append({("feedback", "1970-01-02"): [_feedback(0, 1)]}, {"fb": {0: 1}})
    before = (tmp_path / "manifest.json").read_text()
    store.append({("feedback", "1970-01-02"): [_feedback(1, 1)]}, {"fb": {0: 2}})
    (tmp_path / "manifest.json").write_text(before)  # the kill: file renamed, manifest not replaced

    reopened = ArchiveStore(tmp_path)
    assert reopened.next_offset("fb", 0) == 1  # resume re-reads offset 1 ...
    assert read_kind(tmp_path, "feedback")["threat_id"].to_list() == ["t0"]  # ... whose file is gone
    reopened.append({("feedback", "1970-01-02"): [_feedback(1, 1)]}, {"fb": {0: 2}})
    assert read_kind(tmp_path, "feedback")["threat_id"].to_list() == ["t0", "t1"]
    assert len(list(tmp_path.glob("kind=feedback/*/*.parquet"))) == 2


def test_the_oldest_date_partitions_go_first_when_over_the_bound(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    store = ArchiveStore(tmp_path)
    for day in (1, 2, 3):
        store.append({("feedback", f"1970-01-0{day + 1}"): [_feedback(day, day)]}, {"fb": {0: day}})
    one_day = store.size() // 3
    bounded = ArchiveStore(tmp_path, max_bytes=2 * one_day + 10)
    bounded.append({("feedback", "1970-01-05"): [_feedback(4, 4)]}, {"fb": {0: 4}})

    assert read_kind(tmp_path, "feedback")["threat_id"].to_list() == ["t3", "t4"]
    assert not (tmp_path / "kind=feedback" / "date=1970-01-02").exists()
    assert Manifest.read(tmp_path / "manifest.json").dropped == ["1970-01-02", "1970-01-03"]
    assert "dropped date partition 1970-01-02" in caplog.text
    assert bounded.size() <= 2 * one_day + 10
