"""Read a user's csv/parquet table into columnar arrays for replay, train and evaluate.

Strings are stripped (and booleans normalised) before anything else, because formatting quirks in
real datasets often track the label (e.g. trailing spaces only in normal rows). A string column
becomes a signal only when the user names it in --signals; it is then categorical: each distinct
text (stripped, lower-cased) maps to a fixed number, 0/1 for the usual two-state words and otherwise
a stable hash code, so the same text gets the same number in every file.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

_TIME_WORDS = ("timestamp", "time", "date")
_NORMAL_LABELS = frozenset({"", "0", "0.0", "normal", "false", "benign", "none", "null", "nan"})
_ANOMALY_LABELS = frozenset({"1", "1.0", "true", "anomaly", "attack"})
_TRUE_WORDS = frozenset({"true", "on", "open", "yes", "high", "active"})
_FALSE_WORDS = frozenset({"false", "off", "closed", "no", "low", "inactive"})
_BOOLEAN_TEXT = {"true": "1", "false": "0"}
_MAX_SHOWN = 40


class TableError(ValueError):
    """The table cannot be read as asked; the message says what to change."""


@dataclass(frozen=True)
class TableOptions:
    """How to read one table; one field per CLI option."""

    format: str | None = None
    sep: str = ","
    time_col: str | None = None
    time_format: str | None = None
    device_col: str | None = None
    device: str | None = None
    label_col: str | None = None
    signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """Columnar rows in input order: event time, device, numeric signals, optional labels."""

    source: str
    time_ms: np.ndarray
    devices: list[str]
    signal_names: tuple[str, ...]
    signals: np.ndarray
    labels: list[str] | None

    def __len__(self) -> int:
        return int(self.time_ms.shape[0])


def read_table(path: str | Path, opts: TableOptions) -> Table:
    """Read `path` as `opts` say; raises TableError with a message that tells what to fix."""
    path = Path(path)
    frame = _normalised(_load(path, opts), path)
    if frame.height == 0:
        raise TableError(f"{path}: the table has no rows")
    time_cols = _time_columns(frame, opts, path)
    time_ms = _parse_time(frame, time_cols, opts.time_format, path)
    devices = _devices(frame, opts, path)
    labels = _labels(frame, opts.label_col, path)
    used = set(time_cols) | {c for c in (opts.device_col, opts.label_col) if c}
    names, signals = _signals(frame, opts.signals, used, path)
    return Table(str(path), time_ms, devices, names, signals, labels)


def normalise_label(value: str | None) -> str:
    """Class name of one label cell: "normal" for 0/normal/empty, "anomaly" for 1/true."""
    text = "" if value is None else str(value).strip().lower()
    if text in _NORMAL_LABELS:
        return "normal"
    if text in _ANOMALY_LABELS:
        return "anomaly"
    return text


def category_code(text: str) -> float:
    """Fixed number of one categorical text: 0/1 for two-state words, else a stable hash code."""
    text = text.strip().lower()
    if text in _FALSE_WORDS:
        return 0.0
    if text in _TRUE_WORDS:
        return 1.0
    return float(2 + zlib.crc32(text.encode()) % 65_521)


def _load(path: Path, opts: TableOptions) -> pl.DataFrame:
    fmt = (opts.format or path.suffix.lstrip(".")).lower()
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt in ("csv", "txt", "tsv"):
            sep = "\t" if fmt == "tsv" and opts.sep == "," else opts.sep
            return pl.read_csv(path, separator=sep, infer_schema=False, encoding="utf8-lossy",
                               truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise TableError(f"{path}: cannot read as {fmt}: {_short(str(e))}") from e
    raise TableError(f"{path}: unknown format {fmt!r}; pass --format csv or --format parquet")


def _normalised(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Strip BOM/space from names; strip string cells and write true/false as 1/0."""
    names = [c.replace("\ufeff", "").strip() for c in frame.columns]
    if len(set(names)) != len(names):
        raise TableError(f"{path}: duplicate column names after stripping spaces: {names}")
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            stripped = col.str.strip_chars()
            lowered = stripped.str.to_lowercase()
            exprs.append(pl.when(lowered.is_in(list(_BOOLEAN_TEXT)))
                         .then(lowered.replace(_BOOLEAN_TEXT)).otherwise(stripped).alias(name))
        elif dtype == pl.Boolean:
            exprs.append(col.cast(pl.Int8).cast(pl.String).alias(name))
    return frame.with_columns(exprs) if exprs else frame


def _require(frame: pl.DataFrame, name: str, what: str, path: Path) -> None:
    if name not in frame.columns:
        raise TableError(f"{path}: no {what} column {name!r}; columns are "
                         f"{_short(', '.join(frame.columns))}")


def _time_columns(frame: pl.DataFrame, opts: TableOptions, path: Path) -> list[str]:
    if opts.time_col:
        cols = [c.strip() for c in opts.time_col.split(",") if c.strip()]
        for c in cols:
            _require(frame, c, "time", path)
        return cols
    for c in frame.columns:
        if any(w in c.lower() for w in _TIME_WORDS):
            return [c]
    raise TableError(f"{path}: no column name contains time/date/timestamp; pass --time-col "
                     f"(columns are {_short(', '.join(frame.columns))})")


def _parse_time(frame: pl.DataFrame, cols: list[str], fmt: str | None, path: Path) -> np.ndarray:
    if len(cols) == 1 and frame.schema[cols[0]].is_temporal():
        parsed = frame.get_column(cols[0]).cast(pl.Datetime("ms")).dt.epoch("ms")
        return _no_missing_time(frame, parsed, cols, "", path)
    text = frame.select(pl.concat_str([pl.col(c).cast(pl.String).str.strip_chars()
                                       for c in cols], separator=" ")).to_series()
    if fmt:
        parsed = _strptime(text, fmt)
        return _no_missing_time(frame, parsed, cols, f"does not match --time-format {fmt!r}",
                                path, text)
    numbers = text.cast(pl.Float64, strict=False)
    if numbers.null_count() == 0:
        scale = 1.0 if float(numbers.abs().max() or 0.0) >= 1e11 else 1000.0  # type: ignore[arg-type]
        return np.asarray((numbers * scale).round().cast(pl.Int64).to_numpy(), dtype=np.int64)
    try:
        parsed = text.str.to_datetime(time_unit="ms", strict=False, time_zone="UTC")
    except pl.exceptions.PolarsError as e:
        raise TableError(f"{path}: time {text[0]!r} in {'+'.join(cols)} is neither epoch "
                         f"seconds/ms nor ISO 8601; pass --time-format (strptime, e.g. "
                         f"'%d/%m/%y %H')") from e
    return _no_missing_time(frame, parsed.dt.epoch("ms"), cols,
                            "is neither epoch seconds/ms nor ISO 8601; pass --time-format", path,
                            text)


def _strptime(text: pl.Series, fmt: str) -> pl.Series:
    """Epoch ms (null where no match); Python's strptime for formats polars refuses (e.g. '%H')."""
    try:
        return text.str.strptime(pl.Datetime("ms"), fmt, strict=False).dt.epoch("ms")
    except pl.exceptions.ComputeError:
        epoch = {v: _py_strptime_ms(v, fmt) for v in text.unique().to_list()}
        return pl.Series([epoch[v] for v in text.to_list()], dtype=pl.Int64)


def _py_strptime_ms(value: str | None, fmt: str) -> int | None:
    if value is None:
        return None
    try:
        stamp = datetime.strptime(value, fmt)  # noqa: DTZ007 - naive means UTC, set below
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _no_missing_time(frame: pl.DataFrame, parsed: pl.Series, cols: list[str], why: str,
                     path: Path, text: pl.Series | None = None) -> np.ndarray:
    bad = parsed.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        shown = repr(text[row]) if text is not None else "empty"
        raise TableError(f"{path}: row {row + 1}: time {shown} in {'+'.join(cols)} {why or 'is missing'}"
                         f" ({int(bad.sum())} rows like this)")
    return np.asarray(parsed.to_numpy(), dtype=np.int64)


def _devices(frame: pl.DataFrame, opts: TableOptions, path: Path) -> list[str]:
    if opts.device_col is None:
        return [opts.device or path.stem] * frame.height
    _require(frame, opts.device_col, "device", path)
    devices = frame.get_column(opts.device_col).cast(pl.String).str.strip_chars()
    empty = devices.is_null() | (devices == "")
    if empty.any():
        row = int(empty.arg_true()[0])
        raise TableError(f"{path}: row {row + 1}: empty device in column {opts.device_col!r} "
                         f"({int(empty.sum())} rows like this)")
    return devices.to_list()


def _labels(frame: pl.DataFrame, label_col: str | None, path: Path) -> list[str] | None:
    if label_col is None:
        return None
    _require(frame, label_col, "label", path)
    return [normalise_label(v) for v in frame.get_column(label_col).cast(pl.String).to_list()]


def _signals(frame: pl.DataFrame, wanted: tuple[str, ...], used: set[str],
             path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    for name in wanted:
        _require(frame, name, "signal", path)
    names = list(wanted) or [c for c in frame.columns if c not in used and _is_numeric(frame, c)]
    if not names:
        raise TableError(f"{path}: no numeric signal columns besides time/device/label; "
                         f"name some with --signals (string columns become categories)")
    columns = [_signal_values(frame.get_column(n)) for n in names]
    return tuple(names), np.column_stack(columns).astype(np.float64)


def _is_numeric(frame: pl.DataFrame, name: str) -> bool:
    col = frame.get_column(name)
    if col.dtype.is_numeric():
        return True
    if col.dtype != pl.String:
        return False
    text = col.filter(col.is_not_null() & (col != ""))
    return text.len() > 0 and text.cast(pl.Float64, strict=False).null_count() == 0


def _signal_values(col: pl.Series) -> np.ndarray:
    """Numbers as float (NaN = missing); a string column that is not all numbers is categorical."""
    if col.dtype.is_numeric():
        return np.asarray(col.cast(pl.Float64).fill_null(np.nan).to_numpy(), dtype=np.float64)
    text = col.cast(pl.String)
    numbers = text.cast(pl.Float64, strict=False)
    present = text.is_not_null() & (text != "")
    if numbers.filter(present).null_count() == 0:
        return np.asarray(numbers.fill_null(np.nan).to_numpy(), dtype=np.float64)
    codes = {v: category_code(v) for v in text.unique().to_list() if v}
    return np.array([codes.get(v, np.nan) if v else np.nan for v in text.to_list()],
                    dtype=np.float64)


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "…"


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a table (shared by replay, train and evaluate)."""
    g = parser.add_argument_group("table", "how to read the input table")
    g.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="file format (default: from the file extension)")
    g.add_argument("--sep", default=",", help="csv field separator (default ',')")
    g.add_argument("--time-col", default=None,
                   help="event time column; 'date,time' joins several with a space (default: "
                        "first column whose name contains time/date/timestamp)")
    g.add_argument("--time-format", default=None,
                   help="strptime format of the time, e.g. '%%d/%%m/%%y %%H' (default: epoch "
                        "seconds/ms numbers or ISO 8601)")
    dev = g.add_mutually_exclusive_group()
    dev.add_argument("--device-col", default=None, help="column naming the device of each row")
    dev.add_argument("--device", default=None,
                     help="one device name for every row (default: the file name without suffix)")
    g.add_argument("--label-col", default=None,
                   help="ground-truth column: 0/normal/empty = normal, 1/true = anomaly, any other "
                        "text is a class name")
    g.add_argument("--signals", default=None,
                   help="comma-separated signal columns (default: every numeric column except "
                        "time/device/label); a listed string column becomes categorical")


def table_options(args: argparse.Namespace) -> TableOptions:
    """TableOptions from arguments added by add_table_arguments."""
    signals = tuple(s.strip() for s in (args.signals or "").split(",") if s.strip())
    return TableOptions(format=args.format, sep=args.sep, time_col=args.time_col,
                        time_format=args.time_format, device_col=args.device_col,
                        device=args.device, label_col=args.label_col, signals=signals)
