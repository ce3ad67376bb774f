"""The whole graph with telemetry + operator activity (TestingSource/TestingSink, 1 and 2 workers):
insider and drift are detected, every activity message is accounted for, outputs honour the schemas."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from tests.support.fleet import BATCH_EVENTS
from tests.support.flow import assert_published_contracts, by_role, run_flow
from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.sim.activity import ActivitySimulator
from twinguard.pipelines.sim.faults import corrupt_some
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig


def simulated(seed: int, rt: Runtime, activity: str) -> tuple[list[RawBatch], FleetSimulator, int]:
    """Telemetry and operator commands interleaved; the batches, the fleet, the number of commands."""
    # its own fleet: 120 devices for 90 s leave room for the insider and drift scenarios
    fleet = FleetSimulator(SimConfig(devices=120, duration_s=90, seed=seed, attack_fraction=0.05,
                                     start_ms=1_795_000_000_000), rt.types, rt.keys)
    ops = ActivitySimulator(fleet)
    rng, batches, offsets = random.Random(seed), [], Counter[str]()
    for role, keys, chunk, _ts in ops.interleave(fleet.batches(max_events=BATCH_EVENTS)):
        topic = activity if role == "activity" else "telemetry"
        # a few broken commands, too
        values = corrupt_some(chunk, 0.01, rng)[0] if role == "activity" else chunk
        part = len(batches) % 2
        batches.append(RawBatch(topic, part, np.arange(offsets[topic], offsets[topic] + len(values)),
                                list(keys), list(values)))
        offsets[topic] += len(values)
    return batches, fleet, offsets[activity]


def run(batches: list[RawBatch], workers: int, cfg: Config, rt: Runtime) -> list[OutMsg]:
    return run_flow(batches, workers, cfg, rt, batch_size=3)


@pytest.mark.parametrize("workers", [1, 2])
def test_insider_and_drift_are_detected_and_every_command_is_accounted_for(
        workers: int, config: Config, runtime: Runtime) -> None:
    activity = config.topics.activity
    batches, fleet, n_activity = simulated(3, runtime, activity)
    docs = by_role(run(batches, workers, config, runtime))
    assert_published_contracts(docs, first=300)
    latest = {t["device_id"]: t for t in docs["twins"]}
    dead = docs.get("deadletter", [])
    act_dead = [d for d in dead if d["topic"] == activity]
    # every activity message is folded into its twin's `commands` or dead-lettered with a reason
    assert sum(int(str(t["commands"])) for t in latest.values()) + len(act_dead) == n_activity
    assert act_dead and all(d["reason"] for d in act_dead)
    tele_in = sum(len(b) for b in batches if b.topic != activity)
    assert sum(int(str(t["version"])) for t in latest.values()) + len(dead) - len(act_dead) == tele_in

    threats = docs.get("threats", [])
    ev = evaluate(threats, fleet.labels, {d for d, _ in fleet.devices})
    ours = [a for a in ev.attacks if a.label.threat in ("insider", "drift")]
    assert {a.label.threat for a in ours} == {"insider", "drift"}
    missed = [(a.label, a.classes_seen) for a in ours if not a.right_class]
    assert not missed
    assert [t for t in ev.false_alarms if t["threat"] in ("insider", "drift")] == []
    insider = [t for t in threats if t["threat"] == "insider"]
    assert all(t["user"] and str(t["user"]) in str(t["reasons"]) for t in insider)
    assert any(t["desired"] for t in latest.values())


def test_activity_outputs_are_deterministic_across_worker_counts(config: Config,
                                                                 runtime: Runtime) -> None:
    batches, _, _ = simulated(4, runtime, config.topics.activity)
    ids = [Counter(json.loads(m.value)["id"] for m in run(batches, w, config, runtime)
                   if m.role == "threats" and json.loads(m.value)["threat"] in ("insider", "drift"))
           for w in (1, 2)]
    assert ids[0] == ids[1] and ids[0]
