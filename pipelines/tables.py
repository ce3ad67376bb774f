"""Read a CSV or parquet table of telemetry (bring your own data) into arrays: time, device, signals, labels.

Stand-in written by the replay helper to the agreed interface (the datasets helper owns the final
version); `replay` and `train` only use read_table, TableOptions, add_table_arguments, table_options.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

TIME_HINTS = ("timestamp", "time", "date")
NORMAL_LABELS = {"", "0", "0.0", "normal", "false", "benign", "none", "nan", "null"}
ANOMALY_LABELS = {"1", "1.0", "true", "attack", "anomaly", "abnormal", "malicious"}


class TableError(ValueError):
    """The table cannot be read as asked; the message says which column/row and what to change."""


@dataclass(frozen=True)
class TableOptions:
    format: str | None = None  # "csv" | "parquet" | None = by file extension
    sep: str = ","
    time_col: str | None = None  # None: first column whose name contains timestamp/time/date
    time_format: str | None = None  # strptime format; None: epoch s/ms numbers or ISO 8601
    device_col: str | None = None
    device: str | None = None  # constant device name (default: file stem) without device_col
    label_col: str | None = None
    signals: tuple[str, ...] = ()  # (): every numeric column except time/device/label


@dataclass(frozen=True)
class Table:
    source: str
    time_ms: npt.NDArray[np.int64]  # [rows] event time, ms epoch, input row order
    devices: list[str]
    signal_names: tuple[str, ...]
    signals: npt.NDArray[np.float64]  # [rows, signals], NaN = missing
    labels: list[str] | None


def read_table(path: str | Path, opts: TableOptions) -> Table:
    """The table at `path` as arrays (input row order); TableError says what to fix."""
    p = Path(path)
    df = _frame(p, opts)
    if df.height == 0:
        raise TableError(f"{p}: the table has no rows")
    time_col = opts.time_col or _guess_time(df, p)
    used = {time_col, opts.device_col, opts.label_col} - {None}
    for c in used:
        _need(df, str(c), p)
    names = opts.signals or tuple(c for c in df.columns
                                  if c not in used and df.schema[c].is_numeric())
    if not names:
        raise TableError(f"{p}: no numeric signal columns (columns: {', '.join(df.columns)}); "
                         "name them with --signals")
    for c in names:
        _need(df, c, p)
    sig = np.column_stack([_numeric(df[c], p) for c in names])
    devices = (df[opts.device_col].cast(pl.Utf8).fill_null("").to_list() if opts.device_col
               else [opts.device or p.stem] * df.height)
    labels = _labels(df[opts.label_col]) if opts.label_col else None
    return Table(str(p), _times(df[time_col], opts.time_format, p), devices, tuple(names), sig,
                 labels)


def _frame(p: Path, opts: TableOptions) -> pl.DataFrame:
    if not p.is_file():
        raise TableError(f"{p}: no such file")
    fmt = opts.format or {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
                          ".pq": "parquet"}.get(p.suffix.lower())
    try:
        if fmt == "parquet":
            df = pl.read_parquet(p)
        elif fmt == "csv":
            try:
                df = pl.read_csv(p, separator=opts.sep, infer_schema_length=10_000)
            except pl.exceptions.ComputeError:  # a late row breaks the guessed types: scan all
                df = pl.read_csv(p, separator=opts.sep, infer_schema_length=None)
        else:
            raise TableError(f"{p}: unknown table format {p.suffix!r}; pass --format csv|parquet")
    except (pl.exceptions.PolarsError, OSError) as e:
        raise TableError(f"{p}: cannot read as {fmt}: {e}") from None
    return df.rename({c: c.strip() for c in df.columns})


def _need(df: pl.DataFrame, col: str, p: Path) -> None:
    if col not in df.columns:
        raise TableError(f"{p}: no column {col!r} (columns: {', '.join(df.columns)})")


def _guess_time(df: pl.DataFrame, p: Path) -> str:
    for hint in TIME_HINTS:
        for c in df.columns:
            if hint in c.lower():
                return c
    raise TableError(f"{p}: no time column found (columns: {', '.join(df.columns)}); "
                     "pass --time-col")


def _numeric(s: pl.Series, p: Path) -> npt.NDArray[np.float64]:
    if not s.dtype.is_numeric() and s.dtype != pl.Boolean:
        bad = s.drop_nulls().head(1).to_list()
        raise TableError(f"{p}: signal column {s.name!r} is not numeric ({s.dtype}, e.g. "
                         f"{bad[0]!r}); leave it out of --signals")
    return s.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)


def _times(s: pl.Series, fmt: str | None, p: Path) -> npt.NDArray[np.int64]:
    try:
        if s.dtype.is_numeric() and fmt is None:
            v = s.cast(pl.Float64).to_numpy()
            top = np.nanmax(np.abs(v)) if v.size else 0.0
            scale = 1000.0 if top < 1e11 else (1.0 if top < 1e14 else 1e-3)  # s, ms or µs
            ms = v * scale
        elif fmt is not None:  # Python's strptime: polars refuses some formats (hour only)
            ms = _strptime_ms(s.cast(pl.Utf8).str.strip_chars(), fmt)
        else:
            if s.dtype == pl.Utf8:
                s = s.str.strip_chars().str.to_datetime(strict=True, time_unit="ms")
            ms = s.dt.replace_time_zone(None).dt.epoch("ms").cast(pl.Float64).to_numpy()
    except (pl.exceptions.PolarsError, ValueError) as e:
        how = f"--time-format {fmt!r}" if fmt else "epoch seconds/ms or ISO 8601"
        raise TableError(f"{p}: time column {s.name!r} does not parse as {how}: {e}; "
                         "pass --time-format (strptime)") from None
    bad = np.nonzero(~np.isfinite(ms))[0]
    if bad.size:
        raise TableError(f"{p}: time column {s.name!r} is empty or invalid at row {bad[0]}")
    return ms.astype(np.int64)


def _strptime_ms(s: pl.Series, fmt: str) -> npt.NDArray[np.float64]:
    """ms epoch per value (naive times are UTC), parsing each distinct string once."""
    uniq = s.unique().drop_nulls().to_list()
    parsed = {}
    for v in uniq:
        d = dt.datetime.strptime(v, fmt)  # noqa: DTZ007 - naive means UTC, set below
        parsed[v] = (d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp() * 1000.0
    return np.array([parsed.get(v, np.nan) if v is not None else np.nan for v in s.to_list()])


def _labels(s: pl.Series) -> list[str]:
    out = []
    for raw in s.cast(pl.Utf8).fill_null("").to_list():
        v = raw.strip().lower()
        out.append("normal" if v in NORMAL_LABELS else "anomaly" if v in ANOMALY_LABELS else v)
    return out


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The table options every table-reading command takes."""
    g = parser.add_argument_group("table")
    g.add_argument("--format", choices=["csv", "parquet"], default=None,
                   help="table format (default: from the file extension)")
    g.add_argument("--sep", default=",", help="CSV separator (default ,)")
    g.add_argument("--time-col", default=None,
                   help="event-time column (default: first column named like time/date)")
    g.add_argument("--time-format", default=None,
                   help="strptime format of the time column (default: epoch s/ms or ISO 8601)")
    d = g.add_mutually_exclusive_group()
    d.add_argument("--device-col", default=None, help="column naming the device of each row")
    d.add_argument("--device", default=None, help="one device name for every row (default: file "
                   "name)")
    g.add_argument("--label-col", default=None, help="ground-truth column (0/normal = normal)")
    g.add_argument("--signals", default=None, help="comma-separated signal columns (default: "
                   "every numeric column except time/device/label)")


def table_options(args: argparse.Namespace) -> TableOptions:
    signals = tuple(s.strip() for s in args.signals.split(",") if s.strip()) if args.signals else ()
    return TableOptions(args.format, args.sep, args.time_col, args.time_format, args.device_col,
                        args.device, args.label_col, signals)
