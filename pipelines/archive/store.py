"""The archive on disk: Parquet files under kind=<kind>/date=<YYYY-MM-DD>/, and one manifest.

Exactly once across kills: a flush writes its files (temporary name, then rename), then replaces
`manifest.json` atomically with the new file list *and* the next offset per topic partition. The
manifest is the only truth: on open, any Parquet file it does not list (written by a flush that was
killed before its manifest) is deleted, and reading resumes from the manifest's offsets, so those
rows are read and written again exactly once. Dropping partitions for the size bound updates the
manifest first and deletes after, for the same reason.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from twinguard.pipelines.archive.records import SCHEMAS, frame

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


@dataclass
class Manifest:
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> next
    files: list[str] = field(default_factory=list)  # paths relative to the archive root
    seq: int = 0  # files written so far (names part-<seq>)
    rows: dict[str, int] = field(default_factory=dict)  # kind -> rows written (dropped ones too)
    dropped: list[str] = field(default_factory=list)  # partitions removed for the size bound

    def to_json(self) -> str:
        offsets = {t: {str(p): o for p, o in parts.items()} for t, parts in self.offsets.items()}
        return json.dumps({"offsets": offsets, "files": self.files, "seq": self.seq,
                           "rows": self.rows, "dropped": self.dropped}, indent=1)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        if not path.exists():
            return cls()
        raw: dict[str, Any] = json.loads(path.read_text())
        offsets = {t: {int(p): int(o) for p, o in parts.items()}
                   for t, parts in raw["offsets"].items()}
        return cls(offsets, list(raw["files"]), int(raw["seq"]), dict(raw.get("rows", {})),
                   list(raw.get("dropped", [])))


class ArchiveStore:
    """Append rows (grouped by kind and date) together with the offsets they advance to."""

    def __init__(self, root: Path, max_bytes: int = 0) -> None:
        self.root, self.max_bytes = root, max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest.read(root / MANIFEST)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        listed = set(self.manifest.files)
        for p in sorted(self.root.glob("kind=*/date=*/*")):
            rel = p.relative_to(self.root).as_posix()
            if rel not in listed:
                log.info("archive: removing %s (written by a flush that never completed; its "
                         "rows are read again)", rel)
                p.unlink()

    def next_offset(self, topic: str, partition: int) -> int | None:
        return self.manifest.offsets.get(topic, {}).get(partition)

    def append(self, groups: dict[tuple[str, str], list[dict[str, Any]]],
               offsets: dict[str, dict[int, int]]) -> None:
        """Write one file per (kind, date) group, then commit them with `offsets` (next per partition)."""
        m = self.manifest
        new = []
        for (kind, date), rows in sorted(groups.items()):
            rel = f"kind={kind}/date={date}/part-{m.seq:08d}.parquet"
            m.seq += 1
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            frame(kind, rows).write_parquet(tmp)
            tmp.replace(path)
            new.append(rel)
            m.rows[kind] = m.rows.get(kind, 0) + len(rows)
        for topic, parts in offsets.items():
            m.offsets.setdefault(topic, {}).update(parts)
        m.files += new
        self._commit()
        self._bound()

    def _commit(self) -> None:
        tmp = self.root / (MANIFEST + ".tmp")
        with tmp.open("w") as f:
            f.write(self.manifest.to_json())
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.root / MANIFEST)

    def size(self) -> int:
        return sum((self.root / f).stat().st_size for f in self.manifest.files)

    def _bound(self) -> None:
        """Drop the oldest date partitions (every kind of that date) while over max_bytes; the
        newest date is always kept, so a bound smaller than one day's data is warned about."""
        if self.max_bytes <= 0:
            return
        by_date: dict[str, list[str]] = defaultdict(list)
        for f in self.manifest.files:
            by_date[f.split("/")[1].removeprefix("date=")].append(f)
        dates = sorted(by_date)
        size = self.size()
        while size > self.max_bytes and len(dates) > 1:
            date = dates.pop(0)
            freed = sum((self.root / f).stat().st_size for f in by_date[date])
            self.manifest.files = [f for f in self.manifest.files if f not in by_date[date]]
            self.manifest.dropped.append(date)
            self._commit()
            for d in self.root.glob(f"kind=*/date={date}"):
                shutil.rmtree(d)
            size -= freed
            log.warning("archive: dropped date partition %s (%d bytes) to stay within max_bytes=%d",
                        date, freed, self.max_bytes)
        if size > self.max_bytes:
            log.warning("archive: %d bytes in the newest date partition alone exceed max_bytes=%d; "
                        "kept (raise the bound)", size, self.max_bytes)


def read_kind(root: Path, kind: str) -> pl.DataFrame:
    """Every row of `kind` in the files the manifest lists (an empty frame of the schema if none)."""
    files = [root / f for f in Manifest.read(root / "manifest.json").files
             if f.startswith(f"kind={kind}/")]
    if not files:
        return pl.DataFrame(schema=SCHEMAS[kind])
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical")
