"""Dataset preparation of the detection benchmark: leak-safe TON_IoT splits, NAB window labels."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from twinguard.benchmarks.detection.prepare import prepare_nab, prepare_ton


def _ton_files(folder: Path) -> None:
    """Every TON_IoT device file with the real quirks: BOM, CRLF, padding, label-tracking strings."""
    header = {
        "Fridge": "fridge_temperature,temp_condition", "GPS_Tracker": "latitude,longitude",
        "Garage_Door": "door_state,sphone_signal",
        "Modbus": "FC1_Read_Input_Register,FC2_Read_Discrete_Value,FC3_Read_Holding_Register,"
                  "FC4_Read_Coil",
        "Motion_Light": "motion_status,light_status",
        "Thermostat": "current_temperature,thermostat_status",
        "Weather": "temperature,pressure,humidity",
    }
    for device, cols in header.items():
        n = cols.count(",") + 1
        lines = [f"\ufeffdate,time,{cols},label,type"]
        for i in range(200):
            attack = i % 2 == 1
            values = [str(i // 2 if device != "Fridge" else i % 10)] * n
            if device == "Fridge":
                values[1] = "high" if attack else "high "  # the trailing space tracks the label
            date, clock = ("25-Apr-19", "8:00:00") if attack else ("31-Mar-19", " 12:00:00 ")
            lines.append(f"{date},{clock},{','.join(values)},{int(attack)},"
                         f"{'ddos' if attack else 'normal'}")
            if i % 3 == 0:
                lines.append(lines[-1])  # exact duplicates
        (folder / f"Train_Test_IoT_{device}.csv").write_bytes("\r\n".join(lines).encode())


def test_ton_split_is_leak_safe(tmp_path: Path) -> None:
    data = tmp_path / "ton"
    data.mkdir()
    _ton_files(data)
    splits = {s.device: s for s in prepare_ton(data, tmp_path / "work")}
    gps = splits["gps_tracker"]
    train, test = pl.read_csv(gps.train), pl.read_csv(gps.test)
    assert train.columns == ["time_ms", "latitude", "longitude", "class"]  # no date, no time
    assert gps.rows == 267 and gps.distinct_rows == 200  # duplicates removed before splitting
    assert train.height + test.height == 200 and test.height > 0
    shared = set(train.select("latitude", "longitude").iter_rows()) & set(
        test.select("latitude", "longitude").iter_rows())
    assert not shared  # equal sensor readings never on both sides
    assert set(test["class"]) == {"normal", "dos"}  # dataset vocabulary mapped to threat classes
    assert test["time_ms"].diff().drop_nulls().unique().to_list() == [1000]  # synthetic clock
    # normal and attack rows interleave: the order carries no class
    switches = int((test["class"] != test["class"].shift(1)).sum())
    assert switches > test.height // 4
    fridge = splits["fridge"]
    # after stripping, 'high ' == 'high': the same 10 readings in both classes
    assert fridge.distinct_signal_vectors == 10


def test_nab_rows_inside_windows_are_anomalies(tmp_path: Path) -> None:
    data = tmp_path / "nab"
    (data / "realKnownCause").mkdir(parents=True)
    rows = ["timestamp,value", "2014-01-01 00:10:00,3", "2014-01-01 00:00:00,1",
            "2014-01-01 00:05:00,2", "2014-01-01 00:05:00,9", "2014-01-01 00:15:00,4"]
    (data / "realKnownCause" / "s.csv").write_text("\n".join(rows) + "\n")
    windows = {"realKnownCause/s.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]],
               "other/x.csv": []}
    (data / "combined_windows.json").write_text(json.dumps(windows))
    (series,) = prepare_nab(data, tmp_path / "work")
    table = pl.read_csv(series.path)
    assert table["value"].to_list() == [1, 2, 3, 4]  # sorted, repeated timestamp dropped (first kept)
    assert table["label"].to_list() == ["normal", "anomaly", "anomaly", "normal"]
    assert (series.duplicates_dropped, series.windows, series.learning_rows) == (1, 1, 0)
