"""The flow's metrics agree with its outputs on 1 and 2 workers (threads of one process add into
the same series): messages in, dead letters by reason class, threats, actions, batches."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.fleet import Recording
from tests.support.flow import by_role, run_flow, telemetry_batches
from tests.support.metrics import by_label, delta, local_samples, total
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.metrics.reasons import reason_class


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_match_what_the_flow_wrote(workers: int, config: Config, runtime: Runtime,
                                            small_fleet: Recording) -> None:
    batches, bad = telemetry_batches(small_fleet.batches, seed=3, corrupt=0.02)
    before = local_samples()
    out = run_flow(batches, workers, config, runtime)
    got = delta(local_samples(), before)
    docs = by_role(out)

    assert bad > 0
    assert total(got, "twinguard_messages_in_total", topic="telemetry") == sum(map(len, batches))
    assert by_label(got, "twinguard_messages_out_total", ["role"]) == {
        (role,): float(len(d)) for role, d in docs.items()}
    threats = Counter((str(t["threat"]), str(t["severity"])) for t in docs["threats"])
    assert by_label(got, "twinguard_threats_total", ["threat", "severity"]) == threats
    actions = Counter((str(a["action"]), str(a["tier"]), "dry_run" if a["dry_run"] else "live")
                      for a in docs["actions"])
    assert by_label(got, "twinguard_actions_total", ["action", "tier", "mode"]) == actions
    dead = Counter((str(d["stage"]), reason_class(str(d["reason"]))) for d in docs["deadletter"])
    assert by_label(got, "twinguard_dead_letters_total", ["stage", "reason"]) == dead
    assert ("decode", "other") not in dead, [d["reason"] for d in docs["deadletter"]][:5]
    assert total(got, "twinguard_detection_latency_seconds_count") == len(docs["threats"])
    # one decode observation per batch; the shard steps were timed too
    assert total(got, "twinguard_batch_processing_seconds_count", step="decode") == len(batches)
    assert total(got, "twinguard_batch_processing_seconds_count", step="twin_shards") > 0
