"""Signed messages from the future (within max_future_skew_ms) cannot move a partition's event-time
mark beyond the wall clock: the rest of the fleet keeps its detections (issue 18, item 6)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import msgspec
import numpy as np

from twinguard.operators.batches import RawBatch
from twinguard.operators.detect.scoring import Scorer
from twinguard.pipelines.config import load_config
from twinguard.pipelines.evaluation.match import Evaluation, evaluate
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import run_batches
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.messages import Telemetry, canonical_bytes

DAY_MS = 86_400_000
START = 1_795_000_000_000
CFG = load_config(env={})
RT = Runtime.from_config(CFG, scorer=Scorer.rules_only())
FUTURE_DEVICES = 40


class Clock:
    """Wall clock = the event time of the input fed so far (as in a live run)."""

    ms = START

    def __call__(self) -> float:
        return self.ms / 1000


def future_messages(now_ms: int) -> tuple[list[bytes], list[bytes]]:
    """One signed thermostat message from each of 40 devices, 23 h ahead of `now_ms`."""
    keys, values = [], []
    for i in range(FUTURE_DEVICES):
        ev = Telemetry(device_id=f"future-{i}", type="thermostat", ts=now_ms + 23 * 3_600_000,
                       seq=1, signals={"temperature_c": 21.0})
        ev = msgspec.structs.replace(ev, sig=RT.keys.sign(ev.device_id, canonical_bytes(ev)))
        keys.append(ev.device_id.encode())
        values.append(msgspec.json.encode(ev))
    return keys, values


def run(lead_ms: int | None, inject: bool) -> tuple[Evaluation, list[dict[str, object]]]:
    """The fleet through the offline flow with the wall clock following event time; optionally
    40 future messages in the first quarter."""
    fleet = FleetSimulator(SimConfig(devices=120, duration_s=60, seed=5, attack_fraction=0.15,
                                     start_ms=START), RT.types, RT.keys)
    clock = Clock()
    rt = dataclasses.replace(RT, engine=dataclasses.replace(RT.engine, now=clock,
                                                            mark_lead_ms=lead_ms))

    def raws() -> Iterator[RawBatch]:
        offset = 0
        for k, b in enumerate(fleet.batches(max_events=500)):
            keys, values = list(b.keys), list(b.values)
            clock.ms = int(b.ts_ms.max())  # everything in the batch has been sent
            if inject and k == 4:
                extra_keys, extra_values = future_messages(clock.ms)
                keys, values = keys + extra_keys, values + extra_values
            yield RawBatch("telemetry", 0, np.arange(offset, offset + len(values)), keys, values)
            offset += len(values)

    outputs = run_batches(raws(), rt).outputs
    threats = [json.loads(o.value) for o in outputs if o.role == "threats"]
    devices = {d for d, _ in fleet.devices}
    fleet_threats = [t for t in threats if t["device_id"] in devices]
    return evaluate(fleet_threats, fleet.labels, devices), threats


def test_future_timestamps_do_not_close_the_fleets_windows() -> None:
    clean, clean_threats = run(1000, inject=False)
    attacked, threats = run(1000, inject=True)
    assert clean.summary()["detected_right_class"] >= 10  # a fleet worth protecting
    assert attacked.summary() == clean.summary()
    fleet_ids = {str(t["id"]) for t in threats if not str(t["device_id"]).startswith("future-")}
    assert fleet_ids == {str(t["id"]) for t in clean_threats}
    # each sender of a future time is itself called out: clock skew (class replay)
    skewed = {t["device_id"] for t in threats if "clock_skew" in t["detectors"]}
    assert skewed >= {f"future-{i}" for i in range(FUTURE_DEVICES)}


def test_without_the_bound_the_same_messages_blind_the_fleet() -> None:
    """The attack is real: an unbounded mark loses detections or raises false alarms."""
    clean, _ = run(None, inject=False)
    attacked, _ = run(None, inject=True)
    c, a = clean.summary(), attacked.summary()
    # measured: 18 of 18 attacks -> 0, and 102 normal devices alarmed
    assert a["detected_right_class"] < c["detected_right_class"] // 2
    assert a["normal_devices_alarmed"] > c["normal_devices_alarmed"] + 10
