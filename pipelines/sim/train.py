"""`twinguard train`: build the XGBoost attack classifier from simulated fleets through the serving kernels.

Windows are labelled from the simulator's attack intervals; windows that only graze an attack are left
out rather than mislabelled. The fleets have operators commanding their devices (set-point changes are
normal behaviour the model must see); windows of the activity-only classes (insider, drift: judged by
rules on the activity topic, not from telemetry windows) are left out too. A separate seed is held out
for the metrics recorded in the metadata.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.scoring import META_FILE, MODEL_FILE, Scorer, sha256_file
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import WindowLog, run_fleet
from twinguard.pipelines.sim.activity import ActivitySimConfig
from twinguard.pipelines.sim.fleet import SimConfig
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.schemas.features import FEATURE_NAMES, FEATURE_SCHEMA, THREAT_CLASSES

log = logging.getLogger(__name__)
MIN_OVERLAP = 0.3  # share of a window an attack must cover for the window to carry its label
RULE_ONLY = ("insider", "drift")  # no window class: their windows are left out


@dataclass(frozen=True)
class TrainConfig:
    devices: int = 1500
    duration_s: float = 180.0
    seeds: tuple[int, ...] = (101, 102, 103)
    holdout_seed: int = 999
    attack_fraction: float = 0.35
    rounds: int = 60
    max_depth: int = 5
    nthread: int = 2
    operators: bool = True  # fleets with operators on the activity topic


def simulate_windows(cfg: Config, sim: SimConfig, desc: str, ops: ActivitySimConfig | None = None
                     ) -> tuple[WindowLog, list[AttackLabel]]:
    """Closed-window features of one simulated fleet, computed by the serving engine."""
    run, fleet = run_fleet(Runtime.from_config(cfg, scorer=Scorer.rules_only()), sim, desc, ops)
    return run.windows, fleet.labels


def window_labels(w: WindowLog, labels: list[AttackLabel]) -> npt.NDArray[np.int64]:
    """Class index per window; -1 = ambiguous (attack covers < MIN_OVERLAP of it)."""
    by_device: dict[str, list[AttackLabel]] = {}
    for lab in labels:
        by_device.setdefault(lab.device_id, []).append(lab)
    index = {c: i for i, c in enumerate(THREAT_CLASSES)}
    out = np.zeros(len(w.device_ids), dtype=np.int64)
    for i, (d, ws, we) in enumerate(zip(w.device_ids, w.starts, w.ends, strict=True)):
        for lab in by_device.get(d, ()):
            overlap = min(we, lab.end + 1) - max(ws, lab.start)
            if overlap > 0:
                whole = overlap >= MIN_OVERLAP * (we - ws) and lab.threat not in RULE_ONLY
                out[i] = index[lab.threat] if whole else -1
    return out


def dataset(cfg: Config, tc: TrainConfig, seeds: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for seed in seeds:
        sim = SimConfig(devices=tc.devices, duration_s=tc.duration_s, seed=seed,
                        attack_fraction=tc.attack_fraction, start_ms=1_700_000_000_000 + seed * 10**7)
        ops = ActivitySimConfig() if tc.operators else None
        w, labels = simulate_windows(cfg, sim, f"simulate seed {seed}", ops)
        y = window_labels(w, labels)
        keep = y >= 0
        xs.append(w.matrix()[keep])
        ys.append(y[keep])
    return np.vstack(xs), np.concatenate(ys)


def train(cfg: Config, tc: TrainConfig, out_dir: Path) -> dict[str, Any]:
    """Train, evaluate on the held-out fleet, write the model directory; returns the metadata."""
    x, y = dataset(cfg, tc, tc.seeds)
    xh, yh = dataset(cfg, tc, (tc.holdout_seed,))
    counts = np.bincount(y, minlength=len(THREAT_CLASSES))
    booster, params = fit_booster(x, y, class_weights(counts)[y], tc.rounds, tc.max_depth,
                                  tc.nthread)
    data = {"source": "simulator", "operators": tc.operators, "seeds": list(tc.seeds),
            "devices": tc.devices, "duration_s": tc.duration_s, "windows": int(len(y)),
            "class_counts": dict(zip(THREAT_CLASSES, counts.tolist(), strict=True)),
            "sha256": hashlib.sha256(x.tobytes()).hexdigest()}
    holdout = {"seed": tc.holdout_seed, **per_class_metrics(yh, predict_classes(booster, xh))}
    return write_model(out_dir, booster, {"params": params, "rounds": tc.rounds, "data": data,
                                          "holdout": holdout})


def fit_booster(x: npt.NDArray[np.float64], y: npt.NDArray[np.int64],
                weights: npt.NDArray[np.float64], rounds: int, max_depth: int = 5, nthread: int = 2,
                base: Any = None) -> tuple[Any, dict[str, Any]]:
    """The XGBoost classifier every model of twinguard is: `base` (a Booster) is boosted further
    when given (retraining keeps what it knew of classes the new data lacks)."""
    import xgboost as xgb

    params = {"objective": "multi:softprob", "num_class": len(THREAT_CLASSES), "eta": 0.3,
              "max_depth": max_depth, "tree_method": "hist", "nthread": nthread,
              "eval_metric": "mlogloss", "seed": 0}
    dtrain = xgb.DMatrix(x, label=y, weight=weights, feature_names=list(FEATURE_NAMES))
    return xgb.train(params, dtrain, num_boost_round=rounds, xgb_model=base), params


def predict_classes(booster: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    out: npt.NDArray[np.int64] = booster.inplace_predict(
        x.astype(np.float32)).reshape(x.shape[0], len(THREAT_CLASSES)).argmax(axis=1)
    return out


def write_model(out_dir: Path, booster: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """A model directory `Scorer.load` verifies: the booster (UBJ) and metadata.json with its
    sha256, classes and feature schema, plus `extra` (training data, hold-out metrics)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    booster.save_model(str(model_path))
    meta = {
        "version": f"xgb-{sha256_file(model_path)[:10]}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "classes": list(THREAT_CLASSES), "feature_names": list(FEATURE_NAMES),
        "feature_schema": FEATURE_SCHEMA, "sha256": sha256_file(model_path), **extra,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def class_weights(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Per-class sample weights: normal windows carry half the total weight and the attack classes
    present share the other half equally. Balancing all classes alike gave normal 1/12 of the mass,
    and the model then raised threats on its own on healthy devices' unusual but lawful windows."""
    present = (counts > 0) & (np.arange(counts.size) != 0)
    w = np.zeros(counts.size)
    w[present] = 0.5 / (present.sum() * counts[present])
    w[0] = 0.5 / max(int(counts[0]), 1)
    out: npt.NDArray[np.float64] = w * counts.sum()
    return out


def per_class_metrics(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> dict[str, Any]:
    """Precision, recall, F1 per class and macro-F1 over the attack classes present."""
    per: dict[str, dict[str, float]] = {}
    for i, c in enumerate(THREAT_CLASSES):
        tp = int(np.sum((pred == i) & (y == i)))
        fp, fn = int(np.sum((pred == i) & (y != i))), int(np.sum((pred != i) & (y == i)))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per[c] = {"precision": round(p, 4), "recall": round(r, 4),
                  "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "support": int(np.sum(y == i))}
    present = [v["f1"] for v in per.values() if v["support"] > 0]
    return {"per_class": per, "macro_f1": round(float(np.mean(present)), 4) if present else 0.0}
