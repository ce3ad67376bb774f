"""How input partitions and state shards spread over the workers of a cluster, and when they cannot."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from twinguard.operators.io.kafka import quiet_settings
from twinguard.pipelines.cluster.identity import Place
from twinguard.pipelines.config import Config


def partition_counts(settings: dict[str, Any], topics: list[str], timeout_s: float = 15
                     ) -> dict[str, int]:
    """Partitions of each topic (topics the broker does not report are left out)."""
    try:
        meta = AdminClient({**settings, **quiet_settings("admin")}).list_topics(timeout=timeout_s)
    except KafkaException:
        return {}  # require_topics already said the broker answers; a blip only skips the warning
    return {t: len(meta.topics[t].partitions) for t in topics
            if t in meta.topics and meta.topics[t].error is None}


def spread_warnings(cfg: Config, place: Place, partitions: dict[str, int]) -> list[str]:
    """One line per input topic or shard setting that leaves workers of the cluster idle."""
    total = place.total_workers
    out = []
    for topic, n in sorted(partitions.items()):
        if n < total:
            out.append(f"topic {topic} has {n} partition(s) for {total} workers ({place.processes} "
                       f"process(es) x {place.workers}): {total - n} worker(s) read nothing from "
                       f"it; add partitions (kafka-topics --alter --partitions {total}) or run "
                       "fewer workers")
    if cfg.pipeline.shards < total:
        out.append(f"[pipeline] shards = {cfg.pipeline.shards} for {total} workers: "
                   f"{total - cfg.pipeline.shards} worker(s) hold no twin state; set shards >= "
                   f"{total} (a new recovery store is needed when shards change)")
    return out
