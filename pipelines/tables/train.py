"""`twinguard train TABLE...`: learn from your own tables through the serving engine.

Each table is replayed by `replay_table` (the same ShardEngine and kernels that serve), one after
the other with the baselines carried over; the multivariate model learns from all of their windows
(operators/detect/multivariate.py: fitted on the first 60 %, limits calibrated on the rest). The
directory always gets the learned per-device baselines; when the tables' label column marks attack
rows, an XGBoost classifier is also trained on the window features (a window's label is the most
frequent attack class among its rows, normal when it has none; labels that are not threat classes
become `anomaly`), evaluated on the last 20% of each table's windows. Files: metadata.json (sha256
of every file), baselines.npz, model.ubj.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect import multivariate as MV
from twinguard.operators.detect.scoring import META_FILE, MODEL_FILE, sha256_file
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.train import per_class_metrics
from twinguard.pipelines.tables.model import BASELINES_FILE, LearnedBaselines, file_digests
from twinguard.pipelines.tables.read import TableError, TableOptions, read_table
from twinguard.pipelines.tables.replay import (
    ReplayOptions,
    ReplayResult,
    replay_table,
    table_fa_rate,
    table_window_ms,
    table_windows,
)
from twinguard.schemas.features import FEATURE_INDEX, FEATURE_NAMES, FEATURE_SCHEMA, THREAT_CLASSES

I64 = npt.NDArray[np.int64]
CLASS_INDEX = {c: i for i, c in enumerate(THREAT_CLASSES)}
# common dataset spellings of our classes (TON_IoT and others); anything else unknown is `anomaly`
LABEL_ALIASES = {"ddos": "dos", "scanning": "scan", "password": "brute_force"}
HOLDOUT = 0.2
BASELINE_WINDOWS = FEATURE_INDEX["baseline_windows"]


def class_of(label: str) -> int:
    """Threat class index of a table label (0 = normal)."""
    name = label.strip().lower()
    name = LABEL_ALIASES.get(name, name)
    return CLASS_INDEX.get(name, CLASS_INDEX["anomaly"])


def window_classes(res: ReplayResult) -> I64:
    """Per closed window: the most frequent attack class of its rows, 0 when all are normal."""
    labels = res.table.labels
    n_win = res.window_span.shape[0]
    if labels is None:
        return np.zeros(n_win, dtype=np.int64)
    lookup = {lab: class_of(lab) for lab in set(labels)}
    row_cls = np.array([lookup[lab] for lab in labels], dtype=np.int64)
    g_cls = row_cls[res.grouped_rows]
    attack_before = np.r_[0, np.cumsum(g_cls > 0)]
    lo, hi = res.window_span[:, 0], res.window_span[:, 1]
    out = np.zeros(n_win, dtype=np.int64)
    for i in np.nonzero(attack_before[hi + 1] - attack_before[lo] > 0)[0].tolist():
        seen = g_cls[lo[i]:hi[i] + 1]
        out[i] = Counter(seen[seen > 0].tolist()).most_common(1)[0][0]
    return out


def train_tables(paths: list[str], opts: TableOptions, cfg: Config, warmup_rows: int | None,
                 out_dir: Path, rounds: int = 60, deltas: bool = False,
                 fa_rate: float | None = None) -> dict[str, Any]:
    """Replay every table, write baselines (+ a classifier when attacks are labelled)."""
    tables = [read_table(p, opts) for p in paths]
    for t in tables[1:]:
        if t.signal_names != tables[0].signal_names:
            raise TableError(f"{t.source} has signals {list(t.signal_names)} but "
                             f"{tables[0].source} {list(tables[0].signal_names)}; pass --signals")
    baselines: LearnedBaselines | None = None
    fit_x, fit_y, hold_x, hold_y = [], [], [], []
    window_ms = table_window_ms(tables[0], None)
    mv_windows = sum(table_windows(t, window_ms) for t in tables)
    live = 0
    for i, t in enumerate(tables):
        ro = ReplayOptions(warmup_rows, progress=True, known_devices_only=False, deltas=deltas,
                           mv_windows=mv_windows, fa_rate=fa_rate)
        res = replay_table(t, cfg, ro, baselines=baselines)
        if i == len(tables) - 1:  # the end of the learning period: calibrate what is left
            live = MV.finish_learning(res.engine.store.arrays, res.engine.store.size,
                                      MV.MultivariateConfig(mv_windows, table_fa_rate(ro),
                                                            cfg.detection.multivariate_limits,
                                                            cfg.detection.multivariate_time_context))
        baselines = LearnedBaselines.from_store(res.engine.store, res.table.signal_names,
                                                res.window_ms,
                                                res.plan.rows_per_window)
        y = window_classes(res)
        keep = res.window_features[:, BASELINE_WINDOWS] >= res.plan.warm_windows
        x, y = res.window_features[keep], y[keep]
        cut = int(round(len(y) * (1 - HOLDOUT)))
        fit_x.append(x[:cut])
        fit_y.append(y[:cut])
        hold_x.append(x[cut:])
        hold_y.append(y[cut:])
    assert baselines is not None  # noqa: S101 - at least one table (argparse nargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (MODEL_FILE, BASELINES_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    meta: dict[str, Any] = {"kind": "table", "classes": list(THREAT_CLASSES),
                            "feature_names": list(FEATURE_NAMES), "feature_schema": FEATURE_SCHEMA,
                            "baselines": baselines.save(out_dir)}
    x, y = np.vstack(fit_x), np.concatenate(fit_y)
    xh, yh = np.vstack(hold_x), np.concatenate(hold_y)
    counts = np.bincount(np.concatenate([y, yh]), minlength=len(THREAT_CLASSES))
    files = [BASELINES_FILE]
    if counts[1:].sum() > 0 and len(np.unique(y)) > 1:
        meta.update(_fit_classifier(x, y, xh, yh, rounds, out_dir))
        files.append(MODEL_FILE)
    meta["files"] = file_digests(out_dir, files)
    meta["version"] = "table-" + hashlib.sha256(
        json.dumps(meta["files"], sort_keys=True).encode()).hexdigest()[:10]
    meta["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta["data"] = {"sources": [t.source for t in tables], "rows": sum(len(t.devices) for t in tables),
                    "devices": len(baselines.device_ids), "signals": list(tables[0].signal_names),
                    "window_ms": baselines.window_ms, "warmup_rows": warmup_rows,
                    "multivariate": {"learn_windows": mv_windows, "devices_live": live,
                                     "fa_rate": table_fa_rate(ReplayOptions(fa_rate=fa_rate)),
                                     "limits": cfg.detection.multivariate_limits,
                                     "time_context": cfg.detection.multivariate_time_context},
                    "windows": int(len(y) + len(yh)),
                    "class_counts": {c: int(n) for c, n in zip(THREAT_CLASSES, counts, strict=True)
                                     if n}}
    meta["summary"] = _summary(meta)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _fit_classifier(x: np.ndarray, y: I64, xh: np.ndarray, yh: I64, rounds: int,
                    out_dir: Path) -> dict[str, Any]:
    import xgboost as xgb

    counts = np.bincount(y, minlength=len(THREAT_CLASSES))
    weights = (len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)))[y]
    params = {"objective": "multi:softprob", "num_class": len(THREAT_CLASSES), "eta": 0.3,
              "max_depth": 5, "tree_method": "hist", "nthread": 2, "eval_metric": "mlogloss",
              "seed": 0}
    dtrain = xgb.DMatrix(x, label=y, weight=weights, feature_names=list(FEATURE_NAMES))
    booster = xgb.train(params, dtrain, num_boost_round=rounds)
    booster.save_model(str(out_dir / MODEL_FILE))
    holdout = None
    if len(yh):
        pred = booster.inplace_predict(xh.astype(np.float32)).argmax(axis=1)
        holdout = {"windows": int(len(yh)), **per_class_metrics(yh, pred)}
    return {"sha256": sha256_file(out_dir / MODEL_FILE), "params": params, "rounds": rounds,
            "holdout": holdout}


def _summary(meta: dict[str, Any]) -> str:
    d = meta["data"]
    what = f"baselines of {d['devices']} device(s) over {d['windows']:,} windows"
    if "sha256" not in meta:
        return what + "; no attack labels, so no classifier (replay uses the baselines)"
    h = meta.get("holdout") or {}
    return (what + f"; classifier on {d['class_counts']}, hold-out (last {HOLDOUT:.0%} of windows) "
            f"macro-F1 {h.get('macro_f1', 'n/a')}")
