"""The model directory is verified before use: altered bytes, other features or classes are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twinguard.operators.detect.scoring import META_FILE, MODEL_FILE, ModelError, Scorer, default_model_dir
from twinguard.schemas.features import N_FEATURES, THREAT_CLASSES


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    shutil.copytree(default_model_dir(), tmp_path / "m")
    return tmp_path / "m"


def test_shipped_model_loads_and_scores_rows() -> None:
    s = Scorer.load()
    p = s.predict(np.zeros((3, N_FEATURES)))
    assert p.shape == (3, len(THREAT_CLASSES))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    c = s.contributions(np.zeros((2, N_FEATURES)), np.array([1, 2]))
    assert c.shape == (2, N_FEATURES)


def test_altered_model_bytes_are_refused(model_copy: Path) -> None:
    raw = bytearray((model_copy / MODEL_FILE).read_bytes())
    raw[-10] ^= 0xFF
    (model_copy / MODEL_FILE).write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="sha256"):
        Scorer.load(model_copy)


def test_model_for_other_features_is_refused(model_copy: Path) -> None:
    meta = json.loads((model_copy / META_FILE).read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    (model_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="other features"):
        Scorer.load(model_copy)


def test_missing_directory_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="twinguard train"):
        Scorer.load(tmp_path)


def test_rules_only_scores_everything_normal() -> None:
    p = Scorer.rules_only().predict(np.ones((2, N_FEATURES)))
    assert (p[:, 0] == 1).all() and (p[:, 1:] == 0).all()


@pytest.mark.parametrize("walker", [True, False])
def test_infinite_and_huge_features_score_instead_of_raising(walker: bool) -> None:
    """XGBoost raised `Input data contains inf` on such rows and stopped the flow (issue 18, item 1)."""
    s = Scorer.load()
    if not walker:
        s = Scorer(s.version, s.booster, s.metadata, forest=None)  # XGBoost's own predictor
    x = np.zeros((4, N_FEATURES))
    x[0, :] = np.inf
    x[1, :] = -np.inf
    x[2, :] = 1e300
    x[3, :] = np.nan
    p = s.predict(x)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    assert np.isfinite(s.contributions(x, np.array([1, 2, 3, 4]))).all()
