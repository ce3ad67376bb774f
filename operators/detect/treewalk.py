"""A multi-class XGBoost tree ensemble flattened into arrays and walked by a Numba kernel.

`inplace_predict` spends most of a small batch's time in fixed per-call work inside libxgboost
(proxy DMatrix, thread setup, per-tree depth scan); walking the trees here costs only the walk.
Semantics follow XGBoost's CPU predictor (3.x): features as float32, NaN is missing and takes the
node's default branch, `x < split_condition` goes left (so a value equal to the threshold goes
right), margins accumulate in float32 from the per-class `base_score` (stored in margin space for
softmax: its ProbToMargin is the identity; an old scalar base_score is broadcast to every class),
trees in order, then XGBoost's softmax (float32 exp, float64 sum).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
BLOCK = 64  # rows walked through one tree before the next: their features stay in L1 (as XGBoost)


class UnsupportedModelError(ValueError):
    """The booster uses something the walker does not implement; use XGBoost's own predictor."""


@dataclass(frozen=True)
class Forest:
    """All trees' nodes in contiguous arrays; child indices are absolute (into these arrays)."""

    feature: I32  # split feature per node, -1 at a leaf
    threshold: F32  # split condition per node; at a leaf, the leaf value
    left: I32
    right: I32
    default_left: npt.NDArray[np.bool_]  # where a missing (NaN) value goes
    roots: I32  # first node of each tree
    tree_class: I32  # the class (output group) each tree adds to
    base_margin: F32  # per-class starting margin
    n_features: int

    @classmethod
    def of_booster(cls, booster: Any) -> Forest:
        """Flatten an xgboost.Booster (via its JSON model); UnsupportedModelError if it cannot be."""
        return cls.of_json(json.loads(booster.save_raw("json")))

    @classmethod
    def of_json(cls, model: dict[str, Any]) -> Forest:
        """Flatten XGBoost's JSON model (the schema of `Booster.save_raw("json")`)."""
        learner = model["learner"]
        gb, obj = learner["gradient_booster"], learner["objective"]["name"]
        param = learner["learner_model_param"]
        if gb["name"] != "gbtree" or obj != "multi:softprob" or int(param.get("num_target", 1)) != 1:
            raise UnsupportedModelError(f"booster {gb['name']}, objective {obj}, "
                                        f"{param.get('num_target', 1)} targets (walker: gbtree softprob)")
        trees, n_classes = gb["model"]["trees"], int(param["num_class"])
        if any(any(t.get("split_type", ())) or int(t["tree_param"].get("size_leaf_vector", 1)) > 1
               for t in trees):
            raise UnsupportedModelError("categorical splits or vector leaves")
        sizes = np.array([len(t["left_children"]) for t in trees], dtype=np.int32)
        roots = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int32)

        def cat(key: str, dtype: type, shift: bool = False) -> Any:
            parts: list[Any] = [np.asarray(t[key], dtype=dtype) for t in trees]
            if shift:  # child ids are per tree: make them absolute, keeping -1 (no child)
                parts = [np.where(p >= 0, p + r, -1) for p, r in zip(parts, roots, strict=True)]
            return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)

        left = cat("left_children", np.int32, shift=True)
        feature = np.where(left >= 0, cat("split_indices", np.int32), -1).astype(np.int32)
        tree_class = np.asarray(gb["model"]["tree_info"], dtype=np.int32)
        if tree_class.size != len(trees) or (tree_class.size and tree_class.max() >= n_classes):
            raise UnsupportedModelError("tree_info does not match the trees and classes")
        return cls(feature=feature, threshold=cat("split_conditions", np.float32),
                   left=left, right=cat("right_children", np.int32, shift=True),
                   default_left=cat("default_left", np.bool_), roots=roots, tree_class=tree_class,
                   base_margin=_base_margin(param["base_score"], n_classes),
                   n_features=int(param["num_feature"]))

    @classmethod
    def verified(cls, booster: Any) -> Forest:
        """Flatten `booster` and check it scores probe rows (at split thresholds, just below them,
        missing) as `inplace_predict` does: a safety net should a new XGBoost change semantics."""
        forest = cls.of_booster(booster)
        probe = forest.probe_rows()
        ref = np.asarray(booster.inplace_predict(probe), dtype=np.float64).reshape(len(probe), -1)
        got = forest.predict(probe)
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=0.0, atol=1e-6):
            raise UnsupportedModelError("walker disagrees with inplace_predict on probe rows")
        return forest

    def probe_rows(self) -> F32:
        """Zeros, all-missing, and rows with every feature at one of its split thresholds (four
        different ones), each also one float32 step below."""
        split = self.feature >= 0
        rows = [np.zeros(self.n_features, np.float32), np.full(self.n_features, np.nan, np.float32)]
        for k in range(4):
            row = np.full(self.n_features, np.nan, np.float32)
            for f in np.unique(self.feature[split]):
                ts = self.threshold[split & (self.feature == f)]
                row[f] = ts[k * ts.size // 4]
            rows += [row, np.nextafter(row, np.float32(-np.inf))]
        return np.stack(rows)

    def predict(self, x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """[rows, classes] softmax probabilities of feature rows [rows, n_features]."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        out = np.empty((x.shape[0], self.base_margin.size), dtype=np.float32)
        walk(np.ascontiguousarray(x, dtype=np.float32), self.feature, self.threshold, self.left,
             self.right, self.default_left, self.roots, self.tree_class, self.base_margin, out)
        return out.astype(np.float64)


def _base_margin(base_score: str, n_classes: int) -> F32:
    """XGBoost writes base_score as '[a,b,...]' (one per class) or, from older versions, 'a'."""
    values = np.array([float(v) for v in base_score.strip("[]").split(",")], dtype=np.float32)
    if values.size == 1:
        values = np.full(n_classes, values[0], dtype=np.float32)
    if values.size != n_classes:
        raise UnsupportedModelError(f"base_score has {values.size} values for {n_classes} classes")
    return values


@njit(nogil=True, cache=True)
def walk(x: F32, feature: I32, threshold: F32, left: I32, right: I32,
         default_left: npt.NDArray[np.bool_], roots: I32, tree_class: I32,
         base_margin: F32, out: F32) -> None:
    """Write softmax probabilities [rows, classes] into `out` (float32, like XGBoost).

    Per block of rows, trees outer and rows inner, so one tree's nodes and the block's features stay
    in cache; each row's margin still sums its trees in model order, as XGBoost does.
    """
    n_rows, n_classes = x.shape[0], base_margin.shape[0]
    for r in range(n_rows):
        for c in range(n_classes):
            out[r, c] = base_margin[c]
    for start in range(0, n_rows, BLOCK):
        stop = min(start + BLOCK, n_rows)
        for t in range(roots.shape[0]):
            root, c = roots[t], tree_class[t]
            for r in range(start, stop):
                n = root
                while feature[n] >= 0:
                    v = x[r, feature[n]]
                    if math.isnan(v):
                        n = left[n] if default_left[n] else right[n]
                    elif v < threshold[n]:
                        n = left[n]
                    else:
                        n = right[n]
                out[r, c] += threshold[n]
    for r in range(n_rows):
        _softmax(out[r])


@njit(nogil=True, cache=True)
def _softmax(m: F32) -> None:
    """XGBoost's common::Softmax in place: float32 exp of m - max, summed in float64."""
    wmax = m[0]
    for i in range(1, m.shape[0]):
        wmax = max(wmax, m[i])
    wsum = np.float64(0.0)
    for i in range(m.shape[0]):
        m[i] = np.exp(m[i] - wmax)
        wsum += np.float64(m[i])
    s = np.float32(wsum)
    for i in range(m.shape[0]):
        m[i] = m[i] / s
