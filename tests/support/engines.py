"""Shard engines for tests that feed hand-made batches: detectors only, on a clock the test sets."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.devices import TYPES
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.settings import DetectionConfig, PipelineConfig, ResponseConfig, RiskConfig
from twinguard.operators.twin.engine import EngineContext, ShardEngine


def rules_engine(pipeline: PipelineConfig | None = None, now: Callable[[], float] = lambda: 0.0,
                 intel: IntelTable | None = None, risk: RiskConfig | None = None) -> ShardEngine:
    """A fresh shard engine with the detectors only (no model), its clock fixed by `now`."""
    ctx = EngineContext(TYPES, Scorer.rules_only(), pipeline or PipelineConfig(), DetectionConfig(),
                        ResponseConfig(), now=now, intel=IntelTable() if intel is None else intel,
                        risk=risk or RiskConfig())
    return ShardEngine.fresh(ctx)
