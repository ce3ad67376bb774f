"""An archive's contents as the tests check them: rows per kind, read back from its Parquet files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from twinguard.pipelines.archive.store import Manifest


def archived(root: Path, kind: str) -> pl.DataFrame:
    """Every row of `kind` in the files the manifest lists (what a reader of the archive sees)."""
    files = [root / f for f in Manifest.read(root / "manifest.json").files
             if f.startswith(f"kind={kind}/")]
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()
