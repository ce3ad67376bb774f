"""Reading user tables: time parsing, devices, label normalisation, signal selection, clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from twinguard.pipelines.tables.read import (
    TableError,
    TableOptions,
    add_table_arguments,
    category_code,
    read_table,
    table_options,
)


def _csv(tmp_path: Path, text: str, name: str = "plant.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_iso_time_auto_column_device_from_stem_and_numeric_signals(tmp_path: Path) -> None:
    path = _csv(tmp_path, "timestamp,value,note\n2024-01-01 00:00:00,1.5,a\n"
                          "2024-01-01 00:05:00,,b\n")
    t = read_table(path, TableOptions())
    assert t.time_ms.tolist() == [1704067200000, 1704067500000]
    assert t.devices == ["plant", "plant"]
    assert t.signal_names == ("value",)  # the string column is not a signal unless named
    assert t.signals[0, 0] == 1.5
    assert np.isnan(t.signals[1, 0])
    assert t.labels is None


def test_epoch_seconds_and_milliseconds(tmp_path: Path) -> None:
    secs = read_table(_csv(tmp_path, "time,v\n1700000000,1\n1700000001,2\n", "s.csv"), TableOptions())
    ms = read_table(_csv(tmp_path, "time,v\n1700000000000,1\n1700000001500,2\n", "ms.csv"),
                    TableOptions())
    assert secs.time_ms.tolist() == [1700000000000, 1700000001000]
    assert ms.time_ms.tolist() == [1700000000000, 1700000001500]


def test_bom_crlf_padded_split_date_time_and_string_quirks(tmp_path: Path) -> None:
    # TON_IoT-like: BOM, CRLF, separate padded date/time, booleans written two ways, trailing spaces
    text = ("\ufeffdate,time,temp,cond,sig,label,type\r\n"
            "31-Mar-19, 12:00:01 ,9.5,high ,false,0,normal\r\n"
            "25-Apr-19,8:00:00,9.0,high,1,1, DDoS \r\n")
    opts = TableOptions(time_col="date,time", time_format="%d-%b-%y %H:%M:%S", label_col="type",
                        signals=("temp", "cond", "sig"))
    t = read_table(_csv(tmp_path, text), opts)
    assert t.time_ms.tolist() == [1554033601000, 1556179200000]
    assert t.labels == ["normal", "ddos"]
    assert t.signals[:, 1].tolist() == [1.0, 1.0]  # 'high ' and 'high' are the same category
    assert t.signals[:, 2].tolist() == [0.0, 1.0]  # false/0 and 1 are numbers, not text


def test_hour_only_format_and_spaced_column_names(tmp_path: Path) -> None:
    text = "DATETIME, L_T1, ATT_FLAG\r\n04/07/16 00,2.44,0\r\n04/07/16 01,2.66,1\r\n"
    t = read_table(_csv(tmp_path, text), TableOptions(time_format="%d/%m/%y %H", label_col="ATT_FLAG"))
    assert t.time_ms.tolist() == [1467590400000, 1467594000000]
    assert t.signal_names == ("L_T1",)
    assert t.labels == ["normal", "anomaly"]


def test_device_column_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fleet.parquet"
    pl.DataFrame({"ts": [1_700_000_000_000, 1_700_000_001_000], "dev": [" a", "b "],
                  "x": [1, 2], "y": [0.5, None], "ok": [True, False]}).write_parquet(path)
    t = read_table(path, TableOptions(time_col="ts", device_col="dev", label_col="ok"))
    assert t.devices == ["a", "b"]
    assert t.signal_names == ("x", "y")
    assert t.labels == ["anomaly", "normal"]
    assert np.isnan(t.signals[1, 1])


def test_categorical_codes_are_the_same_in_every_file() -> None:
    assert category_code(" Open") == 1.0
    assert category_code("closed ") == 0.0
    assert category_code("idle") == category_code("IDLE ") >= 2.0


@pytest.mark.parametrize(("text", "opts", "message"), [
    ("a,b\n1,2\n", TableOptions(), "pass --time-col"),
    ("time,v\nyesterday,1\n", TableOptions(), "pass --time-format"),
    ("time,v\n2024-01-01 00:00,1\n", TableOptions(time_format="%d/%m/%y"), "row 1"),
    ("time,v\n1,1\n", TableOptions(signals=("w",)), "no signal column 'w'"),
    ("time,v\n1,1\n", TableOptions(label_col="y"), "no label column 'y'"),
    ("time,dev,v\n1,,1\n", TableOptions(device_col="dev"), "empty device"),
    ("time,v\n1,x\n", TableOptions(), "no numeric signal"),
    ("time,v\n", TableOptions(), "no rows"),
])
def test_bad_input_says_what_to_fix(tmp_path: Path, text: str, opts: TableOptions,
                                    message: str) -> None:
    with pytest.raises(TableError, match=message):
        read_table(_csv(tmp_path, text), opts)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "nope.csv", TableOptions())
    with pytest.raises(TableError, match="--format"):
        read_table(_csv(tmp_path, "x", "data.xlsx"), TableOptions())


def test_cli_arguments_build_options() -> None:
    parser = argparse.ArgumentParser()
    add_table_arguments(parser)
    args = parser.parse_args(["--time-col", "date,time", "--label-col", "type",
                              "--signals", "a, b", "--device", "d1"])
    assert table_options(args) == TableOptions(time_col="date,time", label_col="type",
                                               signals=("a", "b"), device="d1")
