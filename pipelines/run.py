"""`twinguard run`: the dataflow on Kafka, with Bytewax workers in this process and optional recovery."""

from __future__ import annotations

import logging
from datetime import timedelta

from bytewax._bytewax import cli_main

from twinguard.operators.io.kafka import IdleStop
from twinguard.pipelines import heap
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import (
    Runtime,
    activity_source,
    build_flow,
    follow_intel,
    kafka_sink,
    kafka_source,
)
from twinguard.pipelines.kafka.admin import require_topics
from twinguard.pipelines.metrics.server import serve
from twinguard.pipelines.offline import warm_up
from twinguard.pipelines.recovery import recovery_config

log = logging.getLogger(__name__)


def run_kafka(cfg: Config, workers: int = 1, until_idle: float | None = None) -> None:
    """Consume telemetry and activity until stopped (or idle for `until_idle` s); write outputs to Kafka."""
    recovery = recovery_config(cfg)
    log.info("twinguard run: brokers=%s topic=%s workers=%d recovery=%s%s", cfg.kafka.brokers,
             cfg.topics.telemetry, workers, cfg.recovery.dir or "off",
             f" until idle {until_idle}s" if until_idle else "")
    rt = Runtime.from_config(cfg, live=True)  # refuses the development key before Kafka is asked
    require_topics(cfg.kafka.client_settings(), [cfg.topics.telemetry, cfg.topics.activity],
                   cfg.startup.broker_timeout_s)
    serve(cfg.metrics, rt.engine.scorer)
    warm_up(rt)
    reader = follow_intel(cfg, rt)
    idle = IdleStop(until_idle) if until_idle else None  # one decision for both topics
    flow = build_flow(cfg, source=kafka_source(cfg, idle), runtime=rt,
                      activity=activity_source(cfg, idle),
                      sink=kafka_sink(cfg, recovery=recovery is not None))
    heap.settle()
    try:
        cli_main(flow, workers_per_process=workers, recovery_config=recovery,
                 epoch_interval=timedelta(seconds=cfg.recovery.snapshot_interval_s))
    finally:
        if reader is not None:
            reader.stop()
    if rt.engine.intel.failure is not None:  # the run ended before a batch could report it
        raise RuntimeError(rt.engine.intel.failure)
    log.info("twinguard run: finished")
