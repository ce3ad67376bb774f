"""The whole dataflow graph in process (TestingSource/TestingSink) and what goes in and comes out."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

import jsonschema
import numpy as np
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from twinguard import schemas
from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime, build_flow
from twinguard.pipelines.sim.faults import corrupt_some
from twinguard.pipelines.sim.fleet import SimBatch

Doc = dict[str, object]


def run_flow(batches: list[RawBatch], workers: int, cfg: Config, rt: Runtime,
             batch_size: int = 4) -> list[OutMsg]:
    """The Bytewax flow over the batches on 1 or 2 workers; every output message."""
    out: list[OutMsg] = []
    flow = build_flow(cfg, source=TestingSource(batches, batch_size=batch_size),
                      sink=TestingSink(out), runtime=rt)
    if workers == 1:
        run_main(flow)  # type: ignore[no-untyped-call]
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)  # type: ignore[no-untyped-call]
    return out


def telemetry_batches(sim: Iterable[SimBatch], seed: int,
                      corrupt: float = 0.0) -> tuple[list[RawBatch], int]:
    """Simulated telemetry as raw batches alternating between two partitions, a `corrupt` share of
    the messages damaged (seeded); the batches and how many messages were damaged."""
    rng, offset, bad = random.Random(seed), 0, 0
    batches: list[RawBatch] = []
    for b in sim:
        values, n = corrupt_some(b.values, corrupt, rng)
        bad += n
        part = len(batches) % 2
        batches.append(RawBatch("telemetry", part, np.arange(offset, offset + len(values)),
                                list(b.keys), list(values)))
        offset += len(values)
    return batches, bad


def by_role(out: list[OutMsg]) -> dict[str, list[Doc]]:
    """Output documents grouped by output role (threats, twins, deadletter, ...), in output order."""
    docs: dict[str, list[Doc]] = {}
    for m in out:
        docs.setdefault(m.role, []).append(json.loads(m.value))
    return docs


def assert_published_contracts(docs: dict[str, list[Doc]], first: int) -> None:
    """The first `first` documents of every role validate against that role's JSON Schema."""
    for role, some in docs.items():
        validator = jsonschema.Draft202012Validator(schemas.json_schema(role))
        for doc in some[:first]:
            validator.validate(doc)
