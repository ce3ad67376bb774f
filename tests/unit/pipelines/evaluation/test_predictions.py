"""`twinguard evaluate --predictions`: metrics of hand-made prediction tables, computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.support.tables import write_table
from twinguard.pipelines.cli import main
from twinguard.pipelines.evaluation.predictions import (
    PredictionsError,
    Slack,
    evaluate_predictions,
    load_predictions,
    parse_class_map,
)

# device a: 10 rows 1 s apart; a dos attack on rows 2-4 (flagged as dos on rows 3, 4), a scan attack
# on row 7 (flagged one row late, on row 8); a stray flag on row 1.
# device b: 4 normal rows, flagged on rows 0, 1 and 3 (two false-alarm runs).
A_LABELS = ["normal", "normal", "dos", "dos", "dos", "normal", "normal", "scan", "normal", "normal"]
A_FLAGS = [0, 1, 0, 1, 1, 0, 0, 0, 1, 0]
A_THREATS = ["normal", "anomaly", "normal", "dos", "dos", "normal", "normal", "normal", "scan",
             "normal"]


def _write(tmp_path: Path, rows: list[tuple[int, str, int, str, str]], name: str = "p.csv") -> Path:
    """rows of (time_ms, device, flag, threat, label), written in the given order."""
    path = tmp_path / name
    frame = pl.DataFrame({
        "row": list(range(len(rows))), "time": [r[0] for r in rows], "device": [r[1] for r in rows],
        "score": [float(r[2]) for r in rows], "flag": [r[2] for r in rows],
        "threat": [r[3] for r in rows], "label": [r[4] for r in rows]})
    return write_table(frame, path)


def _fleet(tmp_path: Path, name: str = "p.csv") -> Path:
    a = [(i * 1000, "a", A_FLAGS[i], A_THREATS[i], A_LABELS[i]) for i in range(10)]
    b = [(i * 1000, "b", f, "anomaly" if f else "normal", "normal")
         for i, f in enumerate([1, 1, 0, 1])]
    return _write(tmp_path, b[:2] + a[::-1] + b[2:], name)  # shuffled: evaluation sorts by time


def test_row_level_binary_and_per_class(tmp_path: Path) -> None:
    r = evaluate_predictions(load_predictions(_fleet(tmp_path)))
    rows = r["row_level"]
    assert rows["binary"] == {"precision": 0.2857, "recall": 0.5, "f1": 0.3636,
                              "tp": 2, "fp": 5, "fn": 2, "tn": 5}
    assert rows["classes_labelled"]
    pc = rows["per_class"]
    assert pc["dos"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3, "predicted": 2}
    assert pc["normal"]["precision"] == 0.7143 and pc["normal"]["recall"] == 0.5
    assert pc["anomaly"]["f1"] == 0.0 and pc["scan"]["f1"] == 0.0
    assert rows["macro_f1"] == pytest.approx((0.8 + 0.5882) / 4, abs=1e-4)


def test_events_without_slack_are_not_point_adjusted(tmp_path: Path) -> None:
    r = evaluate_predictions(load_predictions(_fleet(tmp_path)))
    ev = r["events"]
    assert (ev["attacks"], ev["detected"], ev["detected_right_class"]) == (2, 1, 1)
    assert ev["time_to_detect_s"] == {"median": 1.0, "p95": 1.0, "max": 1.0}
    assert ev["per_class"] == {"dos": {"attacks": 1, "detected": 1, "right_class": 1},
                               "scan": {"attacks": 1, "detected": 0, "right_class": 0}}
    fa = r["false_alarms"]
    assert fa["count"] == 4  # a1, a8 (the late scan flag), b0-b1, b3
    assert fa["normal_device_days"] == round(11 / 86_400, 3)  # 7 + 4 normal rows x 1 s


@pytest.mark.parametrize("slack", [Slack(rows=1), Slack(seconds=1.5)])
def test_slack_lets_a_late_flag_detect(tmp_path: Path, slack: Slack) -> None:
    r = evaluate_predictions(load_predictions(_fleet(tmp_path)), slack)
    assert (r["events"]["detected"], r["events"]["detected_right_class"]) == (2, 2)
    assert r["events"]["time_to_detect_s"]["max"] == 1.0
    assert r["false_alarms"]["count"] == 3


def test_events_split_by_device_and_label_and_binary_labels(tmp_path: Path) -> None:
    rows = [(0, "a", 0, "normal", "0"), (1000, "a", 1, "anomaly", "1"), (0, "b", 0, "normal", "1"),
            (1000, "b", 0, "normal", "1"), (2000, "b", 1, "anomaly", "0")]
    r = evaluate_predictions(load_predictions(_write(tmp_path, rows, "p.parquet")))
    assert r["row_level"]["classes_labelled"] is False
    assert "per_class" not in r["row_level"]
    assert r["events"]["attacks"] == 2  # a's run at the end of a and b's run at its start
    assert r["events"]["detected"] == 1
    assert r["events"]["detected_right_class"] is None
    assert r["false_alarms"]["count"] == 1


def test_class_map_renames_dataset_vocabulary(tmp_path: Path) -> None:
    rows = [(0, "a", 0, "normal", "normal"), (1000, "a", 1, "dos", "DDoS")]
    path = _write(tmp_path, rows)
    plain = evaluate_predictions(load_predictions(path))
    mapped = evaluate_predictions(load_predictions(path, parse_class_map("ddos=dos")))
    assert plain["events"]["detected_right_class"] == 0
    assert mapped["events"]["detected_right_class"] == 1
    assert mapped["row_level"]["macro_f1"] == 1.0


def test_bad_inputs_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PredictionsError, match="label=class"):
        parse_class_map("ddos")
    with pytest.raises(PredictionsError, match="no such file"):
        load_predictions(tmp_path / "none.csv")
    no_label = tmp_path / "n.csv"
    pl.DataFrame({"row": [0], "time": [0], "device": ["a"], "flag": [0],
                  "threat": ["normal"]}).write_csv(no_label)
    with pytest.raises(PredictionsError, match="--label-col"):
        load_predictions(no_label)


def test_cli_prints_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval" / "result.json"
    assert main(["evaluate", "--predictions", str(_fleet(tmp_path)), "--slack-rows", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "attacks detected 2 / 2" in printed
    assert "false alarms 3" in printed
    assert json.loads(out.read_text())["events"]["detected"] == 2


def test_cli_evaluate_without_a_mode_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate"]) == 2
    assert "--predictions" in capsys.readouterr().err


def test_label_names_from_a_table_are_escaped_in_the_printed_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "dos\x1b[2J\nforged"
    rows = [(i * 1000, "a", int(i == 2), "dos" if i == 2 else "normal", evil if i == 2 else "normal")
            for i in range(5)]
    assert main(["evaluate", "--predictions", str(_write(tmp_path, rows))]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\nforged" not in printed
    assert "dos\\x1b[2j\\x0aforged" in printed  # (labels are normalised to lower case)
