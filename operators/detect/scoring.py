"""XGBoost attack classifier: a verified model directory, batch scoring and per-row explanations.

Scoring walks the booster's trees in Numba (operators/detect/treewalk.py: XGBoost's probabilities without
its per-call overhead); explanations, needed only for threat rows, stay with XGBoost.

A model directory holds `model.ubj` (XGBoost's own format, never pickle) and `metadata.json`
(version, classes, feature names, feature-schema hash, sha256 of the booster file, metrics).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.treewalk import Forest, UnsupportedModelError
from twinguard.schemas.features import FEATURE_NAMES, FEATURE_SCHEMA, THREAT_CLASSES

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
MODEL_FILE, META_FILE = "model.ubj", "metadata.json"
# |feature| bound before scoring: XGBoost refuses inf, and float32 (what it scores) overflows past
# 3.4e38; real features stay many orders below. NaN stays NaN (XGBoost's "missing").
FEATURE_LIMIT = 1e30
NO_MODEL = "rules-only"


class ModelError(ValueError):
    """A model directory is missing, tampered with, or built for other features/classes."""


def default_model_dir() -> Path:
    return Path(str(resources.files("twinguard.operators").joinpath("models/default")))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Scorer:
    """Class probabilities for feature rows; without a booster every row scores as 'normal'."""

    version: str
    booster: Any = None  # xgboost.Booster
    metadata: dict[str, Any] | None = None
    forest: Forest | None = None  # the booster flattened for the Numba walker (None: XGBoost)

    @classmethod
    def load(cls, directory: str | Path | None = None, nthread: int = 1) -> Scorer:
        """Load and verify a model directory (default: the shipped model)."""
        d = Path(directory) if directory else default_model_dir()
        meta_path, model_path = d / META_FILE, d / MODEL_FILE
        if not meta_path.is_file() or not model_path.is_file():
            raise ModelError(f"{d} is not a model directory (needs {MODEL_FILE} and {META_FILE}); "
                             "build one with `twinguard train --out DIR`")
        meta = json.loads(meta_path.read_text())
        verify_metadata(meta, sha256_file(model_path), d)
        verify_files(meta, d)
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(model_path.read_bytes()))
        booster.set_param({"nthread": nthread})  # after load: the model file carries its own
        return cls(version=str(meta["version"]), booster=booster, metadata=meta,
                   forest=_walker(booster, d))

    @classmethod
    def rules_only(cls) -> Scorer:
        return cls(version=NO_MODEL)

    def predict(self, x: F64) -> F64:
        """[rows, classes] probabilities (columns in THREAT_CLASSES order), as inplace_predict."""
        if self.booster is None or x.shape[0] == 0:
            return all_normal(x.shape[0])
        x = finite_features(x)
        if self.forest is not None:
            return self.forest.predict(x)
        out = self.booster.inplace_predict(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(out, dtype=np.float64).reshape(x.shape[0], len(THREAT_CLASSES))

    def contributions(self, x: F64, classes: npt.NDArray[np.int64]) -> F64:
        """[rows, features] SHAP-style contribution of each feature to row i's class classes[i]."""
        if self.booster is None or x.shape[0] == 0:
            return np.zeros_like(x)
        import xgboost as xgb

        # nthread=1: a DMatrix for a handful of rows otherwise spends ~25 ms starting threads.
        # No feature names (load() verified the model's): naming and checking them costs ~0.15 ms
        dm = xgb.DMatrix(np.ascontiguousarray(finite_features(x), dtype=np.float32), nthread=1)
        c = self.booster.predict(dm, pred_contribs=True, approx_contribs=True,
                                 validate_features=False)
        c = np.asarray(c).reshape(x.shape[0], len(THREAT_CLASSES), x.shape[1] + 1)
        return np.asarray(c[np.arange(x.shape[0]), classes, :-1], dtype=np.float64)


def finite_features(x: F64) -> F64:
    """`x` with every value within ±FEATURE_LIMIT (inf clipped to it, NaN kept as missing)."""
    out: F64 = np.clip(x, -FEATURE_LIMIT, FEATURE_LIMIT)
    return out


def all_normal(rows: int) -> F64:
    """[rows, classes] probabilities that say 'normal' for sure (no model, or rows not scored)."""
    p = np.zeros((rows, len(THREAT_CLASSES)))
    p[:, 0] = 1.0
    return p


def _walker(booster: Any, where: Path) -> Forest | None:
    """The booster as a tree walker: inplace_predict costs ~0.4 ms per call in fixed overhead,
    the walk alone a few µs; a model the walker cannot reproduce keeps XGBoost's predictor."""
    try:
        return Forest.verified(booster)
    except UnsupportedModelError as e:
        log.warning("%s: scoring with XGBoost's inplace_predict (%s)", where, e)
        return None


def verify_metadata(meta: dict[str, Any], digest: str, where: Path) -> None:
    """Refuse a model whose bytes, features or classes differ from what this build expects."""
    if meta.get("sha256") != digest:
        raise ModelError(f"{where}/{MODEL_FILE}: sha256 {digest[:12]}… does not match "
                         f"metadata {str(meta.get('sha256'))[:12]}… (file altered?)")
    if tuple(meta.get("feature_names", ())) != FEATURE_NAMES:
        raise ModelError(f"{where}: model was trained on other features (schema "
                         f"{meta.get('feature_schema')}, this build {FEATURE_SCHEMA}); retrain")
    if tuple(meta.get("classes", ())) != THREAT_CLASSES:
        raise ModelError(f"{where}: model classes {meta.get('classes')} differ from "
                         f"{list(THREAT_CLASSES)}; retrain")


def verify_files(meta: dict[str, Any], where: Path) -> None:
    """Refuse a directory whose files listed in metadata `files` ({name: sha256}) were altered."""
    files = meta.get("files", {})
    if not isinstance(files, dict):
        raise ModelError(f"{where}/{META_FILE}: `files` must map file names to sha256")
    verify_digests(files, where, META_FILE)


def verify_digests(files: dict[str, str], where: Path, listed_in: str) -> None:
    """Refuse unless every file {name: sha256} exists in `where` with that sha256 (metadata.json's
    `files`, or a model registry record's)."""
    for name, digest in files.items():
        path = where / Path(name).name  # names only: a listing cannot point elsewhere
        if not path.is_file():
            raise ModelError(f"{where}: {name} listed in {listed_in} is missing")
        got = sha256_file(path)
        if got != digest:
            raise ModelError(f"{where}/{name}: sha256 {got[:12]}… does not match {listed_in} "
                             f"{str(digest)[:12]}… (file altered?)")
