"""The whole dataflow graph with TestingSource/TestingSink on 1 and 2 workers: detections, accounting."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.support.fleet import BATCH_EVENTS, Recording
from tests.support.flow import assert_published_contracts, by_role, run_flow, telemetry_batches
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig


@pytest.mark.parametrize("workers", [1, 2])
def test_flow_detects_every_attack_and_accounts_for_every_message(workers: int, config: Config,
                                                                   runtime: Runtime) -> None:
    # its own fleet: 120 devices at a 10% attack share attack every class on several devices
    fleet = FleetSimulator(SimConfig(devices=120, duration_s=60, seed=11, attack_fraction=0.1),
                           runtime.types, runtime.keys)
    batches, _ = telemetry_batches(fleet.batches(max_events=BATCH_EVENTS), seed=11, corrupt=0.002)
    docs = by_role(run_flow(batches, workers, config, runtime))
    assert_published_contracts(docs, first=200)
    threats, dead = docs.get("threats", []), docs.get("deadletter", [])
    latest = {t["device_id"]: t for t in docs["twins"]}
    events_in = sum(len(b) for b in batches)
    # every message is processed (counted in its twin's version) or dead-lettered
    assert sum(int(str(t["version"])) for t in latest.values()) + len(dead) == events_in
    assert len(dead) > 0 and all(d["reason"] and d["stage"] == "decode" for d in dead)
    assert {d for d, _ in fleet.devices} == set(latest)
    ev = evaluate(threats, fleet.labels, {d for d, _ in fleet.devices})
    missed = [(a.label, a.classes_seen) for a in ev.attacks if not a.right_class]
    assert not missed
    assert ev.normal_devices_alarmed <= max(1, ev.normal_devices // 50)
    assert len(docs.get("actions", [])) >= len(fleet.labels)


def test_outputs_are_deterministic_across_worker_counts(config: Config, runtime: Runtime,
                                                        small_fleet: Recording) -> None:
    batches, _ = telemetry_batches(small_fleet.batches, seed=5)
    ids = [Counter(json.loads(m.value)["id"] for m in run_flow(batches, w, config, runtime)
                   if m.role == "threats")
           for w in (1, 2)]
    assert ids[0] == ids[1] and ids[0]
