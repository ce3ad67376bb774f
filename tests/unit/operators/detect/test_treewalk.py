"""The Numba tree walker gives XGBoost's own probabilities (inplace_predict) on the shipped model and
on freshly trained ones: random rows, NaN (missing), infinities, values exactly at split thresholds
and one float32 step below; a model it cannot walk keeps XGBoost's predictor."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from twinguard.operators.detect.scoring import META_FILE, MODEL_FILE, Scorer
from twinguard.operators.detect.treewalk import Forest, UnsupportedModelError
from twinguard.schemas.features import FEATURE_NAMES, N_FEATURES, THREAT_CLASSES

TOL = 1e-6


def reference(booster: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.inplace_predict(x.astype(np.float32)), dtype=np.float64)


def edge_rows(forest: Forest, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random rows with every feature set to one of its split thresholds, the same one float32
    step below, and rows with NaNs and infinities sprinkled in."""
    split = forest.feature >= 0
    rows = np.full((n, forest.n_features), 0.0, dtype=np.float32)
    for f in np.unique(forest.feature[split]):
        rows[:, f] = rng.choice(forest.threshold[split & (forest.feature == f)], n)
    below = np.nextafter(rows, np.float32(-np.inf))
    odd = rows.copy()
    odd[rng.random(odd.shape) < 0.2] = np.nan
    odd[rng.random(odd.shape) < 0.05] = np.inf
    odd[rng.random(odd.shape) < 0.05] = -np.inf
    return np.concatenate([rows, below, odd])


def random_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)) * rng.choice([0.01, 1.0, 100.0, 1e6], size=(n, d))
    x[rng.random(x.shape) < 0.15] = np.nan
    return x


def train(params: dict[str, Any], rounds: int = 12, seed: int = 0) -> xgb.Booster:
    """A small multi-class model on integer-valued features (so thresholds sit on data values)
    with missing values in training, so both default directions are learned."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=(600, 5)).astype(np.float32)
    y = (x[:, 0] + (x[:, 1] > 2) + rng.integers(0, 2, 600)) % 4
    x[rng.random(x.shape) < 0.2] = np.nan
    p = {"objective": "multi:softprob", "num_class": 4, "max_depth": 4, "nthread": 1,
         "seed": seed, **params}
    return xgb.train(p, xgb.DMatrix(x, label=y), num_boost_round=rounds)


def test_shipped_model_walks_like_inplace_predict() -> None:
    s = Scorer.load()
    assert s.forest is not None
    rng = np.random.default_rng(7)
    x = np.concatenate([random_rows(rng, 40, N_FEATURES), edge_rows(s.forest, rng, 20),
                        np.zeros((1, N_FEATURES)), np.full((1, N_FEATURES), np.nan)])
    got, want = s.predict(x), reference(s.booster, x)
    assert got.shape == (len(x), len(THREAT_CLASSES))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("params", [
    {},
    {"tree_method": "exact"},
    {"max_depth": 8, "eta": 0.5, "min_child_weight": 0},
    {"base_score": 0.5},  # a fixed intercept instead of the fitted class priors
    {"num_parallel_tree": 3, "subsample": 0.8},
])
def test_fresh_models_walk_like_inplace_predict(params: dict[str, Any]) -> None:
    b = train(params)
    f = Forest.verified(b)
    rng = np.random.default_rng(1)
    x = np.concatenate([random_rows(rng, 200, 5), edge_rows(f, rng, 100),
                        rng.integers(0, 6, size=(100, 5)).astype(np.float64)])
    np.testing.assert_allclose(f.predict(x), reference(b, x), rtol=0, atol=TOL)


def test_an_old_scalar_base_score_applies_to_every_class() -> None:
    model = json.loads(train({}).save_raw("json"))
    model["learner"]["learner_model_param"]["base_score"] = "3E-1"
    b = xgb.Booster()
    b.load_model(bytearray(json.dumps(model).encode()))
    f = Forest.of_json(model)
    assert (f.base_margin == np.float32(0.3)).all()
    x = random_rows(np.random.default_rng(2), 50, 5)
    np.testing.assert_allclose(f.predict(x), reference(b, x), rtol=0, atol=TOL)


def test_rows_of_the_wrong_width_are_refused() -> None:
    f = Forest.verified(train({}))
    with pytest.raises(ValueError, match="5 features"):
        f.predict(np.zeros((2, 4)))


@pytest.mark.parametrize("params", [{"booster": "gblinear"}, {"booster": "dart", "rate_drop": 0.3},
                                    {"objective": "multi:softmax"}])
def test_models_the_walker_does_not_implement_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedModelError):
        Forest.verified(train(params, rounds=3))


def test_scorer_keeps_inplace_predict_for_a_dart_model(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, len(THREAT_CLASSES), 300)
    b = xgb.train({"booster": "dart", "objective": "multi:softprob",
                   "num_class": len(THREAT_CLASSES), "nthread": 1}, xgb.DMatrix(x, label=y), 3)
    raw = bytes(b.save_raw("ubj"))
    (tmp_path / MODEL_FILE).write_bytes(raw)
    (tmp_path / META_FILE).write_text(json.dumps({
        "version": "dart-test", "sha256": hashlib.sha256(raw).hexdigest(),
        "feature_names": list(FEATURE_NAMES), "classes": list(THREAT_CLASSES)}))
    with caplog.at_level(logging.WARNING, logger="twinguard.operators.detect.scoring"):
        s = Scorer.load(tmp_path)
    assert s.forest is None
    assert "inplace_predict" in caplog.text and "dart" in caplog.text
    rows = random_rows(rng, 5, N_FEATURES)
    np.testing.assert_allclose(s.predict(rows), reference(s.booster, rows).reshape(5, -1),
                               rtol=0, atol=0)
