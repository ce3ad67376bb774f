"""The engine scores only the windows whose model verdict `decide` can read (warm rows and rows a
detector flagged): decisions are the same as with every row scored. `decide` visits only rows that
can change: the same decisions as the plain per-row rule."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.support.devices import TYPES
from twinguard.operators.detect.detectors import DETECTORS, PRIORITY
from twinguard.operators.detect.policy import ANOMALY, CLASS_INDEX, DETECTOR_CONFIDENCE, Decisions, decide
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.settings import DetectionConfig, PipelineConfig, ResponseConfig
from twinguard.operators.twin.engine import EngineContext, ShardEngine
from twinguard.schemas.features import N_FEATURES, THREAT_CLASSES

CFG = DetectionConfig()
C = len(THREAT_CLASSES)


class RecordingScorer(Scorer):
    """Random probabilities; remembers how many rows it was asked for."""

    def predict(self, x: Any) -> Any:
        self.metadata["rows"] += x.shape[0]  # type: ignore[index]
        p = np.random.default_rng(x.shape[0]).dirichlet(np.ones(C) * 0.3, size=x.shape[0])
        return np.asarray(p)


def engine() -> ShardEngine:
    ctx = EngineContext(TYPES, RecordingScorer("test", metadata={"rows": 0}),
                        PipelineConfig(), CFG, ResponseConfig())
    return ShardEngine.fresh(ctx)


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, (12, len(DETECTORS)), elements=st.sampled_from([False] * 9 + [True])),
       arrays(np.bool_, 12), st.integers(0, 2**32 - 1))
def test_decisions_equal_with_only_the_readable_rows_scored(fired: Any, warm: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(C) * 0.3, size=12)
    anomaly = rng.random(12)
    needed = warm | fired.any(axis=1)
    masked = probs.copy()
    masked[~needed] = 0.0
    masked[~needed, 0] = 1.0
    full, partial = decide(fired, probs, warm, CFG, anomaly), decide(fired, masked, warm, CFG, anomaly)
    np.testing.assert_array_equal(full.cls, partial.cls)
    np.testing.assert_array_equal(full.score, partial.score)


def test_the_engine_scores_only_warm_or_flagged_rows() -> None:
    eng = engine()
    rows = np.array([True, False, True, False])
    p = eng._predict(np.zeros((4, N_FEATURES)), rows)
    assert eng.ctx.scorer.metadata == {"rows": 2}
    assert p[~rows].tolist() == [[1.0] + [0.0] * (C - 1)] * 2
    assert np.allclose(p[rows].sum(axis=1), 1.0)
    eng._predict(np.zeros((3, N_FEATURES)), np.zeros(3, dtype=bool))
    assert eng.ctx.scorer.metadata == {"rows": 2}  # no call at all


def decide_every_row(fired: Any, probs: Any, warm: Any, anomaly: Any) -> Decisions:
    """decide's rule applied to every row (the reference for its skipping of quiet rows)."""
    det = np.array([CLASS_INDEX[d.threat] for d in DETECTORS])
    cls, score = np.zeros(len(probs), dtype=np.int64), anomaly.copy()
    for i, p in enumerate(probs):
        hits, m = det[fired[i]], int(p.argmax())
        confident = m != 0 and p[m] >= CFG.model_threshold and warm[i]
        if hits.size and not (confident and (hits == ANOMALY).all()):
            names = {THREAT_CLASSES[h] for h in hits}
            cls[i] = m if m in hits else CLASS_INDEX[next(c for c in PRIORITY if c in names)]
            if cls[i] != ANOMALY:
                score[i] = max(p[cls[i]], DETECTOR_CONFIDENCE)
        elif confident:
            cls[i], score[i] = m, p[m]
    return Decisions(cls, score)


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, (12, len(DETECTORS)), elements=st.sampled_from([False] * 9 + [True])),
       arrays(np.bool_, 12), st.integers(0, 2**32 - 1))
def test_decide_equals_the_rule_applied_to_every_row(fired: Any, warm: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(C) * rng.choice([0.05, 0.3]), size=12)
    anomaly = rng.random(12)
    got, want = decide(fired, probs, warm, CFG, anomaly), decide_every_row(fired, probs, warm, anomaly)
    np.testing.assert_array_equal(got.cls, want.cls)
    np.testing.assert_array_equal(got.score, want.score)
