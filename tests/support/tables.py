"""User tables on disk, as `twinguard replay`, `train` and `evaluate --predictions` read them."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def write_table(frame: pl.DataFrame, path: Path) -> Path:
    """The frame as Parquet if the path ends in .parquet, else as CSV; the path."""
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path
