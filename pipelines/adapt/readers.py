"""Adaptive security in a running dataflow: the feedback and model-registry readers of a process.

Each process follows both topics in background threads (operators/io/follow.py), as it does intel:
suppressions and the promoted model are replicated reference data, not keyed dataflow state, so
every worker sees the same ones and a restart rebuilds them from the (compacted) topics.
"""

from __future__ import annotations

from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.feedback.reader import start_feedback_reader
from twinguard.operators.io.follow import TopicFollower
from twinguard.operators.registry.reader import start_model_reader
from twinguard.operators.twin.engine import EngineContext
from twinguard.pipelines.config import Config
from twinguard.pipelines.metrics import instruments as m
from twinguard.pipelines.metrics.server import describe_process


def count_hidden(threat: str, scope: str) -> None:
    """A threat feedback suppressed, in the process's metrics (EngineContext.hidden)."""
    m.SUPPRESSED.labels(threat, scope).inc()


def _swapped(scorer: Scorer) -> None:
    m.MODEL_SWAPS.labels("swapped").inc()
    describe_process(scorer)


def required_topics(cfg: Config) -> list[str]:
    """The topics the readers follow: the pre-start check names them when they are missing."""
    return ([cfg.topics.feedback] if cfg.feedback.read_topic else []) + (
        [cfg.topics.models] if cfg.models.read_topic else [])


def follow_adaptive(cfg: Config, engine: EngineContext) -> list[TopicFollower]:
    """Start this process's feedback and registry readers (each waits, bounded, to catch up)."""
    settings = cfg.kafka.client_settings()
    readers: list[TopicFollower] = []
    if cfg.feedback.read_topic:
        readers.append(start_feedback_reader(settings, cfg.topics.feedback, cfg.topics.deadletter,
                                             engine.feedback, cfg.feedback))
    if cfg.models.read_topic and engine.models is not None:
        engine.models.on_swap.append(_swapped)
        engine.models.on_refuse.append(lambda _: m.MODEL_SWAPS.labels("refused").inc())
        readers.append(start_model_reader(settings, cfg.topics.models, cfg.topics.deadletter,
                                          engine.models, cfg.models))
    return readers


def reader_failure(engine: EngineContext) -> str | None:
    """Why a reader stopped for good, if one did: the run stops rather than go on without it."""
    models = engine.models.failure if engine.models is not None else None
    return engine.feedback.failure or models


def stop_readers(readers: list[TopicFollower]) -> None:
    for r in readers:
        r.stop()
