"""`twinguard train --from-archive`: a challenger from the archive's labelled windows, judged against
the champion on the same held-out windows, written only if it is better.

- **Split by time, not at random**: the latest `holdout_fraction` of the archive's time span is held
  out. Consecutive windows of a device (one attack spans several) are near copies; a random split
  puts neighbours on both sides and grades the model on what it has seen. Training on the past and
  judging on what came after is also what serving will do.
- **The challenger is the champion boosted further** on the archive (XGBoost `xgb_model`), so the
  classes the archive holds few or no examples of are not forgotten; without a champion booster it
  is trained from scratch.
- **Better means**: a higher macro-F1 over the classes present in the hold-out, and no class's F1
  lower than the champion's by more than `class_margin`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinguard.operators.detect.scoring import Scorer
from twinguard.pipelines.archive.labels import ArchiveError, Labelled, labelled_windows
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.train import class_weights, fit_booster, per_class_metrics, write_model
from twinguard.schemas.features import THREAT_CLASSES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    promoted: bool
    reason: str
    champion: dict[str, Any]  # per_class_metrics on the hold-out
    challenger: dict[str, Any]
    table: str


def time_split(data: Labelled, holdout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, hold-out): the hold-out is every window ending at or after the time
    that leaves `holdout_fraction` of the span after it."""
    lo, hi = int(data.window_end.min()), int(data.window_end.max())
    cut = hi - holdout_fraction * (hi - lo)
    hold = data.window_end >= cut
    if hold.all() or not hold.any():
        msg = ("the archive spans too little time to hold out its latest windows; archive more "
               "(or lower [archive] holdout_fraction)")
        raise ArchiveError(msg)
    return ~hold, hold


def compare(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, margin: float) -> Verdict:
    a, b = per_class_metrics(y, champion), per_class_metrics(y, challenger)
    lines = [f"{'class':<22} {'support':>7} {'champion F1':>12} {'challenger F1':>14} {'change':>7}"]
    worse = []
    for c in THREAT_CLASSES:
        pa, pb = a["per_class"][c], b["per_class"][c]
        if pa["support"] == 0:
            continue
        delta = pb["f1"] - pa["f1"]
        lines.append(f"{c:<22} {pa['support']:>7} {pa['f1']:>12.3f} {pb['f1']:>14.3f} {delta:>+7.3f}")
        if delta < -margin:
            worse.append(f"{c} ({delta:+.3f})")
    lines.append(f"{'macro-F1':<22} {'':>7} {a['macro_f1']:>12.3f} {b['macro_f1']:>14.3f} "
                 f"{b['macro_f1'] - a['macro_f1']:>+7.3f}")
    if worse:
        reason = f"challenger loses more than {margin} F1 on {', '.join(worse)}"
    elif b["macro_f1"] <= a["macro_f1"]:
        reason = f"challenger macro-F1 {b['macro_f1']:.3f} is not above {a['macro_f1']:.3f}"
    else:
        reason = f"challenger macro-F1 {b['macro_f1']:.3f} > champion {a['macro_f1']:.3f}"
    return Verdict(not worse and b["macro_f1"] > a["macro_f1"], reason, a, b, "\n".join(lines))


def retrain(cfg: Config, archive: Path, champion_dir: str | None, out: Path, rounds: int
            ) -> Verdict:
    """Label, split, train the challenger, compare; write `out` only when the challenger wins."""
    a = cfg.archive
    data = labelled_windows(archive, cfg.detection.alert_cooldown_ms, a.unlabelled_weight)
    train, hold = time_split(data, a.holdout_fraction)
    champion = Scorer.load(champion_dir or cfg.detection.model_dir or None)
    y = data.y[train]
    weights = class_weights(np.bincount(y, minlength=len(THREAT_CLASSES)))[y] * data.weight[train]
    booster, params = fit_booster(data.x[train], y, weights, rounds, base=champion.booster)
    challenger = Scorer(version="challenger", booster=booster)
    xh = data.x[hold]
    verdict = compare(data.y[hold], champion.predict(xh).argmax(axis=1),
                      challenger.predict(xh).argmax(axis=1), a.class_margin)
    if verdict.promoted:
        write_model(out, booster, {
            "params": params, "rounds": rounds,
            "data": {"source": "archive", "archive": str(archive), "windows": int(train.sum()),
                     "labels": data.summary, "champion": champion.version,
                     "sha256": hashlib.sha256(data.x[train].tobytes()).hexdigest(),
                     "class_counts": dict(zip(THREAT_CLASSES, np.bincount(
                         y, minlength=len(THREAT_CLASSES)).tolist(), strict=True))},
            "holdout": {"split": "time", "windows": int(hold.sum()),
                        "from_ms": int(data.window_end[hold].min()), **verdict.challenger},
            "champion_holdout": verdict.champion})
    return verdict
