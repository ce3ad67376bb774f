"""`twinguard run`: the dataflow on Kafka, with Bytewax workers in this process."""

from __future__ import annotations

import logging
from datetime import timedelta

from bytewax._bytewax import cli_main

from pipelines.config import Config
from pipelines.flow import build_flow, kafka_source

log = logging.getLogger(__name__)
EPOCH = timedelta(seconds=2)


def run_kafka(cfg: Config, workers: int = 1, until_idle: float | None = None) -> None:
    """Consume telemetry until stopped (or idle for `until_idle` s); write outputs to Kafka."""
    log.info("twinguard run: brokers=%s topic=%s workers=%d%s", cfg.kafka.brokers,
             cfg.topics.telemetry, workers, f" until idle {until_idle}s" if until_idle else "")
    flow = build_flow(cfg, source=kafka_source(cfg, idle_s=until_idle))
    cli_main(flow, workers_per_process=workers, epoch_interval=EPOCH)
    log.info("twinguard run: finished")
