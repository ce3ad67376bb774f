"""Labelled windows from the archive: analyst feedback turned into training labels.

- A window the engine decided was a threat takes the verdict on that threat: its own threat event,
  or (threats are emitted once per device and class per `alert_cooldown_ms`) the device's latest
  threat of the same class within the cooldown before it. `true_positive` -> the analyst's class
  (`Feedback.threat`, when they corrected it) else the threat's class; `false_positive` and
  `benign_positive` -> normal. An alarm nobody reviewed is left out: we do not know what it was.
- A window nothing flagged is taken as normal with weight `unlabelled_weight` (< 1). Acceptable
  because attacks are rare next to normal traffic, so nearly all of these are normal; weighting
  them below reviewed labels keeps a missed attack (labelled normal by this rule) from outvoting
  what analysts confirmed. That cost is the rule's known blind spot (README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from twinguard.pipelines.archive.records import FEATURE_PREFIX
from twinguard.pipelines.archive.store import read_kind
from twinguard.schemas.features import FEATURE_NAMES, THREAT_CLASSES

log = logging.getLogger(__name__)
INDEX = {c: i for i, c in enumerate(THREAT_CLASSES)}


class ArchiveError(ValueError):
    """The archive cannot be learned from; the message says why and what to do."""


@dataclass(frozen=True)
class Labelled:
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float64]
    window_end: npt.NDArray[np.int64]
    summary: dict[str, int]  # how many windows each rule labelled or left out


def labelled_windows(root: Path, cooldown_ms: int, unlabelled_weight: float) -> Labelled:
    if not (root / "manifest.json").exists():
        msg = f"{root} is not an archive (no manifest.json); write one with `twinguard archive`"
        raise ArchiveError(msg)
    windows = read_kind(root, "windows").unique(["device_id", "window_end"], keep="last")
    if windows.height == 0:
        msg = (f"{root} holds no windows: run the dataflow with `twinguard run --emit-windows` "
               "and archive them")
        raise ArchiveError(msg)
    verdicts = _verdicts(read_kind(root, "threats"), read_kind(root, "feedback"))
    flagged = _flagged(windows, verdicts, cooldown_ms)
    quiet = windows.filter(pl.col("decided") == "normal").with_columns(
        label=pl.lit("normal"), weight=pl.lit(unlabelled_weight))
    reviewed = flagged.filter(pl.col("label").is_not_null()).with_columns(weight=pl.lit(1.0))
    rows = pl.concat([quiet.select(_cols()), reviewed.select(_cols())]).sort("window_end")
    summary = {"unflagged_as_normal": quiet.height,
               "true_positive": flagged.filter(pl.col("verdict") == "true_positive").height,
               "false_or_benign_as_normal": flagged.filter(
                   pl.col("verdict").is_in(["false_positive", "benign_positive"])).height,
               "unreviewed_left_out": flagged.filter(pl.col("verdict").is_null()).height}
    x = rows.select([FEATURE_PREFIX + n for n in FEATURE_NAMES]).to_numpy().astype(np.float64)
    y = np.array([INDEX[c] for c in rows["label"].to_list()], dtype=np.int64)
    return Labelled(x, y, rows["weight"].to_numpy().astype(np.float64),
                    rows["window_end"].to_numpy().astype(np.int64), summary)


def _cols() -> list[str]:
    return ["window_end", "label", "weight", *(FEATURE_PREFIX + n for n in FEATURE_NAMES)]


def _verdicts(threats: pl.DataFrame, feedback: pl.DataFrame) -> pl.DataFrame:
    """Per threat: device, class, window end, the latest verdict and the class it implies."""
    bad = feedback.filter(pl.col("threat").is_not_null() & ~pl.col("threat").is_in(THREAT_CLASSES))
    if bad.height:
        log.warning("train: %d feedback records name an unknown class (e.g. %r): their correction "
                    "is ignored", bad.height, bad["threat"][0])
    latest = feedback.sort("ts").unique("threat_id", keep="last").select(
        pl.col("threat_id").alias("id"), "verdict",
        pl.when(pl.col("threat").is_in(THREAT_CLASSES)).then(pl.col("threat")).alias("corrected"))
    out = threats.unique("id").join(latest, on="id", how="left").with_columns(
        label=pl.when(pl.col("verdict") == "true_positive")
        .then(pl.coalesce("corrected", "threat"))
        .when(pl.col("verdict").is_in(["false_positive", "benign_positive"]))
        .then(pl.lit("normal")))
    return out.select("device_id", pl.col("threat").alias("decided"), "window_end", "verdict",
                      "label")


def _flagged(windows: pl.DataFrame, verdicts: pl.DataFrame, cooldown_ms: int) -> pl.DataFrame:
    """Flagged windows with the verdict of their threat (or of the one the cooldown folded them
    into): the device's latest threat of the same class at or before the window's end."""
    w = windows.filter(pl.col("decided") != "normal").sort("window_end")
    v = verdicts.sort("window_end").rename({"window_end": "threat_end"})
    return w.join_asof(v, left_on="window_end", right_on="threat_end",
                       by=["device_id", "decided"], strategy="backward", tolerance=cooldown_ms)
