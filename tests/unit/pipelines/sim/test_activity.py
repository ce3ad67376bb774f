"""The simulated operators: labelled scenarios, reserved drift devices, devices that follow commands."""

from __future__ import annotations

import json

from tests.support.devices import KEYS, TYPES
from twinguard.pipelines.sim.activity import ActivitySimulator
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig


def plan(seed: int) -> tuple[FleetSimulator, ActivitySimulator]:
    # its own fleet: 120 devices for 90 s leave room for the insider and drift scenarios
    fleet = FleetSimulator(SimConfig(devices=120, duration_s=90, seed=seed,
                                     start_ms=1_795_000_000_000), TYPES, KEYS)
    return fleet, ActivitySimulator(fleet)


def test_scenarios_are_labelled_and_drift_devices_get_only_their_scenario_commands() -> None:
    fleet, ops = plan(3)
    drift = {lb.device_id for lb in fleet.labels if lb.threat == "drift"}
    assert drift and {lb.threat for lb in fleet.labels} >= {"insider", "drift"}
    assert all(lb.user for lb in fleet.labels if lb.threat == "insider")
    index = {name: d for d, (name, _) in enumerate(fleet.devices)}
    for name in drift:  # nothing else resets the desired state the scenario is about
        modes = [c.mode for c in ops.commands if c.dev == index[name]]
        assert modes[0] == "follow" and modes[1] in ("ignore", "follow") and len(modes) <= 3


def test_a_commanded_device_reports_its_set_point() -> None:
    fleet, ops = plan(4)
    follow = [c for c in ops.commands if c.mode == "follow" and c.ts < fleet.dur_ms - 15_000
              and c.signal != "valve_open_pct"  # the valve takes ~45 s: too slow for this run
              and not any(o.dev == c.dev and o.ts > c.ts for o in ops.commands)]
    assert follow
    c = follow[0]
    name = fleet.devices[c.dev][0].encode()
    last = None
    for b in fleet.batches():
        for k, v in zip(b.keys, b.values, strict=True):
            if k == name:
                last = json.loads(v)["signals"][c.signal]
    assert last is not None and abs(last - c.value) < 0.25
    msgs = ops.messages()
    assert [m[0] for m in msgs] == sorted(m[0] for m in msgs)
