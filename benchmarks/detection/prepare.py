"""Dataset preparation that the protocols need before the user commands run (written to a work dir).

Only what a user would also have to do: NAB's labels live in a separate JSON of windows; TON_IoT's
files must be made leak-safe (see ton_iot/SOURCE.md); TEP and SMD files carry no time and no header,
so they become CSV tables with a synthetic clock at their documented sampling interval. BATADAL needs
nothing: its files are replayed as they are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from twinguard.pipelines.tables.read import normalise_label

NAB_LEARNING_SHARE = 0.15  # NAB's probationary period: the first 15% of each series only learns
TON_TEST_SHARE = 0.30
TON_START_MS = 1_546_300_800_000  # 2019-01-01 00:00 UTC: synthetic clock, one row per second
# TON_IoT `type` vocabulary -> twinguard threat classes (documented in the results)
TON_CLASS_MAP = {
    "normal": "normal", "ddos": "dos", "scanning": "scan", "password": "brute_force",
    "injection": "false_data_injection", "backdoor": "unauthorized_access",
    "ransomware": "tampering", "xss": "hijack",
}
TON_SIGNALS = {
    "Fridge": ("fridge_temperature", "temp_condition"),
    "GPS_Tracker": ("latitude", "longitude"),
    "Garage_Door": ("door_state", "sphone_signal"),
    "Modbus": ("FC1_Read_Input_Register", "FC2_Read_Discrete_Value",
               "FC3_Read_Holding_Register", "FC4_Read_Coil"),
    "Motion_Light": ("motion_status", "light_status"),
    "Thermostat": ("current_temperature", "thermostat_status"),
    "Weather": ("temperature", "pressure", "humidity"),
}


@dataclass(frozen=True)
class NabSeries:
    name: str
    path: Path          # prepared table: timestamp,value,label
    rows: int
    windows: int
    duplicates_dropped: int
    learning_rows: int


def prepare_nab(nab_dir: Path, work: Path) -> list[NabSeries]:
    """Each realKnownCause series sorted and de-duplicated by time, labelled from its windows."""
    windows = json.loads((nab_dir / "combined_windows.json").read_text())
    out = []
    for csv in sorted((nab_dir / "realKnownCause").glob("*.csv")):
        frame = pl.read_csv(csv, try_parse_dates=False)
        stamp = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms")
        frame = frame.with_columns(stamp.dt.epoch("ms").alias("t")).sort("t", maintain_order=True)
        deduped = frame.unique(subset="t", keep="first", maintain_order=True)
        spans = windows.get(f"realKnownCause/{csv.name}", [])
        inside = pl.lit(False)
        for start, end in spans:
            lo, hi = (_nab_time(start), _nab_time(end))
            inside = inside | pl.col("t").is_between(lo, hi, closed="both")
        labelled = deduped.with_columns(
            pl.when(inside).then(pl.lit("anomaly")).otherwise(pl.lit("normal")).alias("label"))
        path = work / "nab" / csv.name
        path.parent.mkdir(parents=True, exist_ok=True)
        labelled.select("timestamp", "value", "label").write_csv(path)
        out.append(NabSeries(csv.stem, path, labelled.height, len(spans),
                             frame.height - deduped.height,
                             int(labelled.height * NAB_LEARNING_SHARE)))
    return out


def _nab_time(text: str) -> int:
    """Epoch ms of a NAB window bound (UTC, like the series' naive timestamps as read)."""
    stamp = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


@dataclass(frozen=True)
class TonSplit:
    device: str
    train: Path
    test: Path
    signals: tuple[str, ...]
    rows: int
    distinct_rows: int
    distinct_signal_vectors: int
    train_rows: int
    test_rows: int
    test_classes: dict[str, int]


def prepare_ton(ton_dir: Path, work: Path) -> list[TonSplit]:
    """Leak-safe TON_IoT tables: normalised strings, no time, deduplicated, split by content hash.

    Rows are deduplicated on (signals, class); the split hashes the signal values only, so identical
    sensor readings never sit on both sides; each side is then ordered by another hash of its content
    and given a synthetic clock (one row per second), so neither order nor time says anything about
    the class.
    """
    out = []
    for device, signals in TON_SIGNALS.items():
        frame = _ton_normalised(ton_dir / f"Train_Test_IoT_{device}.csv", signals)
        distinct = frame.unique(maintain_order=True)
        keys = [_digest(row) for row in distinct.select(signals).iter_rows()]
        order = [_digest((*row, "order")) for row in distinct.iter_rows()]
        distinct = distinct.with_columns(pl.Series("split_key", keys), pl.Series("order", order))
        test_mask = pl.col("split_key") % 1000 < int(TON_TEST_SHARE * 1000)
        paths = []
        for name, rows in (("train", distinct.filter(~test_mask)), ("test", distinct.filter(test_mask))):
            part = rows.sort("order").with_columns(
                (pl.int_range(pl.len(), dtype=pl.Int64) * 1000 + TON_START_MS).alias("time_ms"))
            path = work / "ton_iot" / f"{device}_{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            part.select("time_ms", *signals, "class").write_csv(path)
            paths.append((path, part))
        (train_path, train), (test_path, test) = paths
        out.append(TonSplit(
            device.lower(), train_path, test_path, signals, frame.height, distinct.height,
            distinct.select(signals).unique().height, train.height, test.height,
            dict(sorted(test.group_by("class").len().iter_rows()))))
    return out


def _ton_normalised(path: Path, signals: tuple[str, ...]) -> pl.DataFrame:
    """Signals and class as stripped, lower-cased text (true/false as 1/0); date/time dropped."""
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    frame = frame.rename({c: c.replace("\ufeff", "").strip() for c in frame.columns})
    text = [pl.col(c).str.strip_chars().str.to_lowercase().replace({"true": "1", "false": "0"})
            for c in signals]
    classes = [TON_CLASS_MAP.get(normalise_label(v), "anomaly") for v in frame["type"].to_list()]
    return frame.select(text).with_columns(pl.Series("class", classes))


def _digest(row: tuple[object, ...]) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, row)).encode()).digest()[:8], "big")


TEP_ROW_S = 180  # one TEP sample every 3 minutes (tep/SOURCE.md)
TEP_FAULT_ROW = 160  # test files turn faulty after this many rows
TEP_START_S = 1_577_836_800  # 2020-01-01 00:00 UTC: synthetic clock (the files carry no time)
TEP_SIGNALS = tuple([f"XMEAS_{i}" for i in range(1, 42)] + [f"XMV_{i}" for i in range(1, 12)])


@dataclass(frozen=True)
class TepFiles:
    train: Path  # d00.dat (normal) as a table
    tests: dict[int, Path]  # fault number (0 = normal run) -> dNN_te.dat as a labelled table


def prepare_tep(tep_dir: Path, work: Path) -> TepFiles:
    """TEP's whitespace-separated files as CSV tables a user can replay: a `time` column on a
    synthetic 180 s clock, XMEAS_1..41 and XMV_1..11, and (test files) `label` = 1 from row 161."""
    out = work / "tep"
    out.mkdir(parents=True, exist_ok=True)
    train = _tep_table(_tep_rows(tep_dir / "d00.dat").T, out / "d00.csv", None)
    tests = {}
    for path in sorted(tep_dir.glob("d??_te.dat")):
        fault = int(path.name[1:3])
        x = _tep_rows(path)
        label = [0] * min(TEP_FAULT_ROW, len(x)) + [1 if fault else 0] * max(len(x) - TEP_FAULT_ROW, 0)
        tests[fault] = _tep_table(x, out / f"{path.stem}.csv", label)
    return TepFiles(train, tests)


def _tep_rows(path: Path) -> np.ndarray:
    return np.loadtxt(path, ndmin=2)


def _tep_table(rows: np.ndarray, path: Path, label: list[int] | None) -> Path:
    cols: dict[str, Any] = {"time": TEP_START_S + TEP_ROW_S * np.arange(rows.shape[0])}
    for j, name in enumerate(TEP_SIGNALS):
        cols[name] = rows[:, j]
    if label is not None:
        cols["label"] = label
    pl.DataFrame(cols).write_csv(path)
    return path


SMD_ROW_S = 60  # one SMD row per minute (smd/SOURCE.md)
SMD_START_S = 1_577_836_800


@dataclass(frozen=True)
class SmdMachine:
    name: str
    train: Path
    test: Path
    test_rows: int
    anomalous_rows: int


def prepare_smd(smd_dir: Path, work: Path) -> list[SmdMachine]:
    """Each machine's train and test files as CSV tables: a `time` column on a synthetic 60 s
    clock (test follows train directly, as in the original series), metrics m1..m38, and the test
    file's 0/1 label."""
    out = work / "smd"
    out.mkdir(parents=True, exist_ok=True)
    machines = []
    for train_path in sorted((smd_dir / "train").glob("*.txt")):
        name = train_path.stem
        train = pl.read_csv(train_path, has_header=False)
        test = pl.read_csv(smd_dir / "test" / train_path.name, has_header=False)
        label = pl.read_csv(smd_dir / "test_label" / train_path.name, has_header=False)
        names = [f"m{j + 1}" for j in range(train.width)]
        frames = []
        for first, frame in ((0, train), (train.height, test)):
            clock = pl.Series("time", [SMD_START_S + SMD_ROW_S * (first + i) for i in range(frame.height)])
            frames.append(frame.rename(dict(zip(frame.columns, names, strict=True))).insert_column(0, clock))
        paths = (out / f"{name}_train.csv", out / f"{name}_test.csv")
        frames[0].write_csv(paths[0])
        frames[1].with_columns(label.to_series().alias("label")).write_csv(paths[1])
        machines.append(SmdMachine(name, paths[0], paths[1], test.height, int(label.to_series().sum())))
    return machines
