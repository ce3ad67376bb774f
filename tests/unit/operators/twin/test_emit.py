"""Coalesced twin output: the sweep emits each changed device once per interval, spread over calls."""

from __future__ import annotations

from collections import Counter

from tests.support.engines import rules_engine
from tests.support.meters import MeterEvent, meter_batch
from twinguard.operators.settings import PipelineConfig
from twinguard.operators.twin.engine import ShardEngine

T0 = 1_700_000_000_000
DEVICES = 40


class Clock:
    def __init__(self) -> None:
        self.t = T0 / 1000

    def __call__(self) -> float:
        return self.t


def engine(clock: Clock) -> ShardEngine:
    return rules_engine(PipelineConfig(twin_emit_interval_s=5.0), now=clock)


def report(eng: ShardEngine, k: int) -> list[str]:
    """Every device reports once (its k-th message); the twins emitted by that call."""
    events = [MeterEvent(f"d{d:02d}", T0 + k * 1000 + d, k, 230.0, 100.0, 0.0, 443, 0)
              for d in range(DEVICES)]
    return [m.key.decode() for m in eng.process(meter_batch(events)) if m.role == "twins"]


def test_sweep_spreads_twins_over_the_interval_and_emits_each_changed_device_once() -> None:
    clock = Clock()
    eng = engine(clock)
    assert len(report(eng, 0)) == DEVICES  # the first call: every device, nothing to spread
    per_call = []
    emitted: Counter[str] = Counter()
    for k in range(1, 11):  # 10 calls 1 s apart = two intervals, every device changing each time
        clock.t += 1.0
        keys = report(eng, k)
        per_call.append(len(keys))
        emitted.update(keys)
    assert per_call == [DEVICES // 5] * 10  # a fifth of the slots per second of a 5 s interval
    assert set(emitted.values()) == {2}  # each device once per interval
    # flush: at once, every device changed since its twin (the last call's fifth is up to date)
    assert len([m for m in eng.flush() if m.role == "twins"]) == DEVICES - DEVICES // 5


def test_unchanged_devices_are_not_emitted_and_a_long_gap_emits_every_changed_one() -> None:
    clock = Clock()
    eng = engine(clock)
    report(eng, 0)
    clock.t += 1.0
    assert [m for m in eng.tick() if m.role == "twins"] == []  # nothing changed
    clock.t += 1.0
    assert len(report(eng, 1)) == DEVICES // 5  # the fifth of the slots the cursor passed
    clock.t += 30.0  # more than an interval without a call
    assert len([m for m in eng.tick() if m.role == "twins"]) == DEVICES - DEVICES // 5
