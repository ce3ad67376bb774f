"""The chaos workload: a planned live fleet, malformed messages, and a producer pacing them in event time."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.chaos.model import (
    CHUNK_EVENTS,
    FINISH_TIMEOUT_S,
    MALFORMED,
    MALFORMED_KEY,
    ChaosConfig,
    Chunks,
)
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.device_types import load_device_types


def plan_fleet(cc: ChaosConfig, keys: KeyRing, start_ms: int) -> FleetSimulator:
    """A fleet whose default per-type rates yield about cc.events messages over the duration."""
    types, dur = load_device_types(), cc.duration()
    devices = max(1, round(cc.events / (dur * float(types.nominal_hz.mean()))))
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=dur, seed=cc.seed,
                                     start_ms=start_ms), types, keys)
    # attacks add messages of their own: rescale once so the total lands near cc.events
    devices = max(1, round(devices * cc.events / fleet.expected_events()))
    return FleetSimulator(SimConfig(devices=devices, duration_s=dur, seed=cc.seed,
                                    start_ms=start_ms), types, keys)


def malformed_schedule(fleet: FleetSimulator, rng: random.Random) -> list[tuple[int, bytes]]:
    """(event time, value) for each malformed message, spread over the live period."""
    span = fleet.dur_ms
    return sorted((fleet.start_ms + rng.randrange(span), bad) for bad in MALFORMED)


def input_chunks(fleet: FleetSimulator, malformed: list[tuple[int, bytes]]) -> Chunks:
    """(send time ms, keys, values) chunks in event-time order, malformed ones slotted in."""
    pending = list(malformed)
    for b in fleet.batches(CHUNK_EVENTS):
        first = int(b.ts_ms[0])
        while pending and pending[0][0] <= first:
            at, bad = pending.pop(0)
            yield at, [MALFORMED_KEY], [bad]
        yield first, list(b.keys), list(b.values)
    for at, bad in pending:
        yield at, [MALFORMED_KEY], [bad]


class PacedProducer(threading.Thread):
    """Produces the input at event-time pace (a live fleet); keeps going through a broker outage."""

    def __init__(self, settings: dict[str, Any], topic: str, chunks: Chunks) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.settings, self.topic, self.chunks = settings, topic, chunks
        self.produced = 0
        self.errors: list[str] = []
        self.failure: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        """Produce every chunk at its time, then wait until the broker has all of them."""
        try:
            # librdkafka's connection-refused lines during the outage are expected: keep quiet
            p = producer(self.settings, log_level=0)
            for at, keys, values in self.chunks:
                self.stopping.wait(max(0.0, at / 1000 - time.time()))
                if self.stopping.is_set():
                    return
                produce_all(p, self.topic, list(zip(keys, values, strict=True)), self.errors.append)
                self.produced += len(values)
            left = p.flush(FINISH_TIMEOUT_S)
            if left:
                self.errors.append(f"{left} telemetry messages still undelivered after "
                                   f"{FINISH_TIMEOUT_S:.0f} s")
        except BaseException as e:  # re-raised by the orchestrator, with context
            self.failure = e
