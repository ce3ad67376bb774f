"""`twinguard run`: the dataflow on Kafka, with Bytewax workers in this process and optional recovery."""

from __future__ import annotations

import logging
from datetime import timedelta

from bytewax._bytewax import cli_main

from twinguard.operators.io.kafka import IdleStop
from twinguard.pipelines import heap
from twinguard.pipelines.adapt import readers as adaptive
from twinguard.pipelines.cluster.identity import Place
from twinguard.pipelines.cluster.spread import partition_counts, spread_warnings
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import (
    Runtime,
    activity_source,
    build_flow,
    follow_intel,
    kafka_sink,
    kafka_source,
    read_topics,
    results_source,
)
from twinguard.pipelines.kafka.admin import require_topics
from twinguard.pipelines.metrics.server import serve
from twinguard.pipelines.offline import warm_up
from twinguard.pipelines.recovery import recovery_config

log = logging.getLogger(__name__)
MESH_PANICS = ("Send thread panic", "Recv thread panic")  # Timely's words for a peer that went away


class ClusterMemberLost(RuntimeError):
    """Another process of the cluster went away; every process must restart together."""


def run_kafka(cfg: Config, place: Place, until_idle: float | None = None) -> None:
    """Consume telemetry and activity until stopped (or idle for `until_idle` s); write outputs to Kafka.

    This process runs `place.workers` workers, alone or as process `place.process_id` of a cluster.
    """
    recovery = recovery_config(cfg, place.process_id)
    log.info("twinguard run: brokers=%s topic=%s %s recovery=%s%s", cfg.kafka.brokers,
             cfg.topics.telemetry, place.describe(), cfg.recovery.dir or "off",
             f" until idle {until_idle}s" if until_idle else "")
    rt = Runtime.from_config(cfg, live=True)  # refuses the development key before Kafka is asked
    settings = cfg.kafka.client_settings()
    require_topics(settings, read_topics(cfg), cfg.startup.broker_timeout_s)
    for warning in spread_warnings(cfg, place, partition_counts(
            settings, [cfg.topics.telemetry, cfg.topics.activity])):
        log.warning("%s", warning)
    serve(cfg.metrics, rt.engine.scorer)
    warm_up(rt)
    reader = follow_intel(cfg, rt)
    followers = adaptive.follow_adaptive(cfg, rt.engine)
    idle = IdleStop(until_idle) if until_idle else None  # one decision for both topics
    flow = build_flow(cfg, source=kafka_source(cfg, idle), runtime=rt,
                      activity=activity_source(cfg, idle), responses=results_source(cfg, idle),
                      sink=kafka_sink(cfg, recovery=recovery is not None),
                      snapshots=recovery is not None)
    heap.settle()
    try:
        cli_main(flow, workers_per_process=place.workers, process_id=place.process_id,
                 addresses=list(place.addresses) or None, recovery_config=recovery,
                 epoch_interval=timedelta(seconds=cfg.recovery.snapshot_interval_s))
    except BaseException as e:  # Bytewax's PanicException is not an Exception
        if place.process_id is not None and any(m in str(e) for m in MESH_PANICS):
            raise ClusterMemberLost(
                f"process {place.process_id} lost its connection to a cluster member ({e}): a "
                "Bytewax cluster cannot continue without one; restart every process (they resume "
                "from the last snapshot)") from None
        raise
    finally:
        if reader is not None:
            reader.stop()
        adaptive.stop_readers(followers)
    if rt.engine.intel.failure is not None:  # the run ended before a batch could report it
        raise RuntimeError(rt.engine.intel.failure)
    if (failure := adaptive.reader_failure(rt.engine)) is not None:
        raise RuntimeError(failure)
    log.info("twinguard run: finished")
