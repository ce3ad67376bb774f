"""`twinguard risk` core: compacted-topic semantics over twin records, ranking, table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from twinguard.pipelines.cli import main
from twinguard.pipelines.kafka.risk_report import as_json, format_table, latest_twins, rank
from twinguard.schemas.messages import TwinState


def twin(device: str, risk: float, dtype: str = "thermostat", threats: int = 0,
         reasons: list[str] | None = None) -> bytes:
    t = TwinState(device_id=device, device_type=dtype, version=1, last_seen=1, seq=1, fw="4.2.0",
                  src_ip=None, reported={}, status="normal", threats_total=threats,
                  last_threat=None, baseline_windows=3, updated_at=1, risk=risk,
                  risk_reasons=reasons or [])
    return msgspec.json.encode(t)


def test_last_value_wins_tombstones_delete_and_bad_records_are_counted() -> None:
    fleet = latest_twins([(b"a", twin("a", 10.0)), (b"b", twin("b", 50.0)), (b"a", twin("a", 70.0)),
                          (b"b", None), (b"c", b"{not json"), (b"d", twin("d", 5.0))])
    assert {d: t.risk for d, t in fleet.twins.items()} == {"a": 70.0, "d": 5.0}
    assert fleet.unreadable == 1


def test_rank_orders_by_risk_then_threats_and_filters_by_type() -> None:
    fleet = latest_twins([(b"x", twin("x", 40.0)), (b"y", twin("y", 40.0, threats=2)),
                          (b"z", twin("z", 90.0, "ip_camera")), (b"w", twin("w", 1.0))])
    assert [r.device_id for r in rank(fleet.twins.values())] == ["z", "y", "x", "w"]
    assert [r.rank for r in rank(fleet.twins.values(), top=2)] == [1, 2]
    assert [r.device_id for r in rank(fleet.twins.values(), device_type="thermostat", top=1)] == ["y"]


def test_table_and_json_show_the_reasons() -> None:
    fleet = latest_twins([(b"cam-1", twin("cam-1", 88.5, "ip_camera", 1,
                                          ["1 threat detected, last scan", "firmware 5.51.2 vulnerable"])),
                          (b"t-1", twin("t-1", 3.0))])
    rows = rank(fleet.twins.values())
    table = format_table(rows, len(fleet.twins)).splitlines()
    assert table[0].split()[:4] == ["rank", "risk", "device", "type"]
    assert table[2].split()[:3] == ["1", "88.5", "cam-1"]
    assert table[2].endswith("1 threat detected, last scan; firmware 5.51.2 vulnerable")
    assert table[3].endswith("  -")  # no reasons
    doc = json.loads(as_json(rows, fleet))
    assert doc["devices"] == 2 and doc["ranking"][0]["reasons"][1] == "firmware 5.51.2 vulnerable"
    assert "no twins found" in format_table([], 0)


def test_cli_ranks_a_twins_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "twins.jsonl"
    path.write_bytes(b"\n".join([twin("a", 10.0), twin("b", 60.0, "ip_camera"), twin("a", 80.0)]) + b"\n")
    assert main(["risk", "--twins", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["device_id"], r["risk"]) for r in doc["ranking"]] == [("a", 80.0), ("b", 60.0)]
    assert main(["risk", "--twins", str(path), "--type", "toaster"]) == 2
    assert "no twins of type 'toaster'" in capsys.readouterr().err
    assert main(["risk", "--twins", str(tmp_path / "none.jsonl")]) == 2


def test_device_controlled_strings_cannot_act_on_the_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Firmware, reasons (intel notes, indicators) and even the type and status of a twin record are
    escaped in the table: no ESC/OSC/bidi reaches the terminal and no line is forged."""
    evil = TwinState(device_id="cam-9", device_type="ip_\x1b[2Jcamera", version=1, last_seen=1, seq=1,
                     fw="5.51.2\x1b]0;owned\x07\n   1  100.0  fake-1", src_ip=None, reported={},
                     status="normal", threats_total=0, last_threat=None, baseline_windows=3,
                     updated_at=1, risk=50.0,
                     risk_reasons=["traffic with intel-listed 203.0.113.9 (high: \x1b[31mC2\x1b[0m)"])
    path = tmp_path / "twins.jsonl"
    path.write_bytes(msgspec.json.encode(evil) + b"\n" + twin("t-1", 3.0) + b"\n")
    assert main(["risk", "--twins", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 5  # head, rule, two devices, footer: no forged row
    assert not any(c in out for c in "\x1b\x07\x9b\u202e\r")
    assert "5.51.2\\x1b]0;owned\\x07\\x0a   1  100.0  fake-1" in lines[2]
    assert "(high: \\x1b[31mC2\\x1b[0m)" in lines[2] and "ip_\\x1b[2Jcamera" in lines[2]
    assert main(["risk", "--twins", str(path), "--json"]) == 0
    assert "\x1b" not in capsys.readouterr().out  # JSON escapes control characters itself
