"""The [archive] configuration section: what the dataflow emits for the archive and how it is written."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveConfig:
    emit_windows: bool = False  # the dataflow writes every closed window to topics.windows
    group_id: str = "twinguard-archive"  # only names the archive's Kafka client: offsets live in the archive
    flush_rows: int = 5000  # buffered rows written as one file per (kind, date) ...
    flush_s: float = 10.0  # ... at least this often while records arrive
    max_bytes: int = 0  # 0 = unbounded; else the oldest date partitions are dropped past this size
    holdout_fraction: float = 0.2  # train --from-archive: the latest share of time held out
    class_margin: float = 0.05  # a challenger is refused if any class's F1 drops by more than this
    unlabelled_weight: float = 0.5  # weight of windows nobody flagged, taken as normal (README)
