"""The whole dataflow graph with TestingSource/TestingSink on 1 and 2 workers: detections, accounting."""

from __future__ import annotations

import json
import random
from collections import Counter

import jsonschema
import numpy as np
import pytest
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from twinguard import schemas
from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.flow import Runtime, build_flow
from twinguard.pipelines.sim.faults import corrupt_some
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig

CFG = load_config(env={})
RT = Runtime.from_config(CFG)


def simulated(devices: int, seed: int, corrupt: float = 0.0) -> tuple[list[RawBatch], FleetSimulator, int]:
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=60, seed=seed, attack_fraction=0.1),
                           RT.types, RT.keys)
    rng, batches, offset, bad = random.Random(seed), [], 0, 0
    for b in fleet.batches(max_events=700):
        values, n = corrupt_some(b.values, corrupt, rng)
        bad += n
        part = len(batches) % 2
        batches.append(RawBatch("telemetry", part, np.arange(offset, offset + len(values)),
                                list(b.keys), list(values)))
        offset += len(values)
    return batches, fleet, bad


def run(batches: list[RawBatch], workers: int, cfg: Config = CFG, rt: Runtime = RT,
        batch_size: int = 4) -> list[OutMsg]:
    """The Bytewax flow over the batches on 1 or 2 workers; every output message."""
    out: list[OutMsg] = []
    flow = build_flow(cfg, source=TestingSource(batches, batch_size=batch_size),
                      sink=TestingSink(out), runtime=rt)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_flow_detects_every_attack_and_accounts_for_every_message(workers: int) -> None:
    batches, fleet, _ = simulated(devices=120, seed=11, corrupt=0.002)
    out = run(batches, workers)
    by_role: dict[str, list[dict[str, object]]] = {}
    for m in out:
        by_role.setdefault(m.role, []).append(json.loads(m.value))
    for role, docs in by_role.items():  # outputs honour the published contracts
        validator = jsonschema.Draft202012Validator(schemas.json_schema(role))
        for doc in docs[:200]:
            validator.validate(doc)
    threats, dead = by_role.get("threats", []), by_role.get("deadletter", [])
    latest = {t["device_id"]: t for t in by_role["twins"]}
    events_in = sum(len(b) for b in batches)
    # every message is processed (counted in its twin's version) or dead-lettered
    assert sum(int(str(t["version"])) for t in latest.values()) + len(dead) == events_in
    assert len(dead) > 0 and all(d["reason"] and d["stage"] == "decode" for d in dead)
    assert {d for d, _ in fleet.devices} == set(latest)
    ev = evaluate(threats, fleet.labels, {d for d, _ in fleet.devices})
    missed = [(a.label, a.classes_seen) for a in ev.attacks if not a.right_class]
    assert not missed
    assert ev.normal_devices_alarmed <= max(1, ev.normal_devices // 50)
    assert len(by_role.get("actions", [])) >= len(fleet.labels)


def test_outputs_are_deterministic_across_worker_counts() -> None:
    batches, _, _ = simulated(devices=40, seed=5)
    ids = [Counter(json.loads(m.value)["id"] for m in run(batches, w) if m.role == "threats")
           for w in (1, 2)]
    assert ids[0] == ids[1] and ids[0]
