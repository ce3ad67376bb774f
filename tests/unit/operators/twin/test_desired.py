"""Desired vs reported state with made reports and commands: convergence, deadlines, silent reverts,
unsafe set-points, commands before the first report, rejects with reasons."""

from __future__ import annotations

import json
from dataclasses import replace

import msgspec
import numpy as np
import pytest

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.activity import ActivityBatch
from twinguard.operators.decode.telemetry import decode_batch
from twinguard.operators.detect.detectors import run_detectors
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.twin.desired import ControlTable, DesiredTracker
from twinguard.operators.twin.engine import ShardEngine
from twinguard.pipelines.flow import Runtime
from twinguard.schemas.messages import Telemetry, TwinState, canonical_bytes

T0 = 1_795_000_000_000
DEV = "thermostat-000001"


class Shard:
    """One ShardEngine with the tracker attached, fed made reports of one thermostat."""

    def __init__(self, rt: Runtime, grace_ms: int = 0) -> None:
        self.rt = rt
        self.engine = ShardEngine.fresh(rt.engine)
        self.tracker = DesiredTracker(rt.types, ControlTable.from_types(rt.types), grace_ms)
        self.engine.on_batch.append(self.tracker)
        self.seq = 0

    def report(self, t_s: float, setpoint: float) -> list[OutMsg]:
        doc = {"device_id": DEV, "type": "thermostat", "ts": T0 + int(t_s * 1000), "seq": self.seq,
               "signals": {"temperature_c": 20.0, "setpoint_c": setpoint, "humidity_pct": 40.0,
                           "heating": 0.0}}
        self.seq += 1
        doc["sig"] = self.rt.keys.sign(DEV, canonical_bytes(msgspec.convert(doc, Telemetry)))
        raw = RawBatch("t", 0, np.array([self.seq]), [DEV.encode()], [json.dumps(doc).encode()])
        rt = self.rt
        return self.engine.process(decode_batch(raw, rt.types, rt.keys, rt.decode, now_ms=T0).oks)

    def command(self, t_s: float, params: dict[str, float | str], user: str = "op.a",
                action: str = "set", device: str = DEV) -> list[OutMsg]:
        acts = ActivityBatch("activity", [device], [user], [action], [params], [None],
                             [T0 + int(t_s * 1000)], [0], [7], [b"{...}"])
        return self.tracker.apply(self.engine, acts)

    def twin(self) -> TwinState:
        return self.engine.twin_state(0, T0)


@pytest.fixture(scope="module")
def rt(runtime: Runtime) -> Runtime:
    """The shared runtime with detectors only: no verdict here may hinge on the shipped model."""
    return replace(runtime, engine=replace(runtime.engine, scorer=Scorer.rules_only()))


def drift(out: list[OutMsg]) -> list[dict[str, object]]:
    docs = [json.loads(m.value) for m in out if m.role == "threats"]
    return [d for d in docs if d["threat"] == "drift"]


def test_a_device_that_follows_its_command_raises_nothing_and_the_twin_shows_desired(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    assert sh.command(1, {"setpoint_c": 22.5}) == []
    out = [m for t in range(2, 60) for m in sh.report(t, 22.5 if t > 3 else 20.0)]
    assert drift(out) == []
    twin = sh.twin()
    assert twin.desired == {"setpoint_c": 22.5} and twin.commands == 1
    msgspec.json.decode(msgspec.json.encode(twin), type=TwinState)


def test_a_device_that_ignores_its_command_drifts_at_the_deadline(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    sh.command(1, {"setpoint_c": 24.0})
    hits = {t: drift(sh.report(t, 20.0)) for t in range(2, 20)}
    fired = [t for t, h in hits.items() if h]
    assert fired == [11]  # converge_s = 10 for thermostats: the first report at or past it
    ev = hits[11][0]
    assert ev["detectors"] == ["not_converged"] and ev["window_start"] == T0 + 1000
    assert "24" in str(ev["reasons"]) and ev["actions"] == ["resync_twin"]


def test_a_silent_revert_is_caught_after_revert_reports_but_edge_noise_is_not(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    sh.command(1, {"setpoint_c": 22.0})
    assert drift([m for t in range(2, 10) for m in sh.report(t, 22.0 + 0.2 * (-1) ** t)]) == []
    assert drift(sh.report(10, 22.4)) == []  # within twice the tolerance: hysteresis
    assert drift(sh.report(11, 20.0)) == []  # one off-target report is not yet a revert
    ev = drift(sh.report(12, 20.0))
    assert len(ev) == 1 and ev[0]["detectors"] == ["silent_revert"]


def test_a_new_command_rearms_and_an_older_late_command_does_not_override(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    sh.command(5, {"setpoint_c": 23.0})
    sh.command(2, {"setpoint_c": 18.0})  # arrives late, is older: counted, not applied
    assert sh.twin().desired == {"setpoint_c": 23.0} and sh.twin().commands == 2
    assert drift([m for t in range(6, 30) for m in sh.report(t, 23.0)]) == []


def test_reports_older_than_the_command_are_not_judged(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    sh.command(30, {"setpoint_c": 25.0})  # commands may arrive ahead of the telemetry
    assert drift([m for t in range(1, 30) for m in sh.report(t, 20.0)]) == []
    assert drift([m for t in range(30, 35) for m in sh.report(t, 25.0)]) == []


def test_unsafe_setpoint_is_an_insider_threat_naming_the_user(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    out = sh.command(1, {"setpoint_c": 34.0}, user="op.mallory")
    ev = [json.loads(m.value) for m in out if m.role == "threats"]
    assert len(ev) == 1 and ev[0]["threat"] == "insider" and ev[0]["user"] == "op.mallory"
    assert ev[0]["detectors"] == ["unsafe_setpoint"] and "10..30" in ev[0]["reasons"][0]
    assert sh.twin().last_threat is not None and sh.twin().last_threat.threat == "insider"


def test_a_set_of_a_signal_that_is_not_commandable_is_dead_lettered_with_a_reason(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.report(0, 20.0)
    out = sh.command(1, {"temperature_c": 30.0})
    assert [m.role for m in out] == ["deadletter"]
    dl = json.loads(out[0].value)
    assert dl["stage"] == "desired_state" and "commandable: setpoint_c" in dl["reason"]
    assert dl["offset"] == 7 and sh.twin().commands == 0


def test_commands_before_the_first_report_wait_for_the_twin_or_are_dead_lettered_at_the_end(
        rt: Runtime) -> None:
    sh = Shard(rt)
    assert sh.command(0, {"setpoint_c": 21.0}) == []
    assert sh.command(0, {}, action="view", device="thermostat-000009") == []
    assert len(sh.engine.store.unresolved) == 2
    sh.report(1, 21.0)
    assert sh.twin().desired == {"setpoint_c": 21.0} and sh.twin().commands == 1
    snap = sh.engine.store.snapshot()
    assert len(snap.unresolved) == 1
    out = sh.tracker.flush(sh.engine)
    assert [json.loads(m.value)["stage"] for m in out] == ["desired_state"]
    assert len(snap.unresolved) == 1  # the snapshot kept its own list


def test_a_verdict_waits_the_grace_and_a_late_command_explaining_the_move_cancels_it(rt: Runtime) -> None:
    sh = Shard(rt, grace_ms=2000)
    sh.report(0, 20.0)
    sh.command(1, {"setpoint_c": 22.0})
    for t in range(2, 10):
        sh.report(t, 22.0)
    assert drift(sh.report(10, 24.0) + sh.report(11, 24.0)) == []  # would be a revert: waits
    sh.command(9.5, {"setpoint_c": 24.0})  # ... and the command behind it shows up late
    assert drift([m for t in range(12, 20) for m in sh.report(t, 24.0)]) == []
    assert drift(sh.report(20, 20.0) + sh.report(21, 20.0) + sh.report(22, 20.0)) == []
    ev = drift(sh.report(23, 20.0))  # a real revert: emitted once 2 s of reports passed it
    assert len(ev) == 1 and ev[0]["window_end"] == T0 + 21_000


def test_a_command_read_after_the_reports_that_followed_it_is_judged_on_the_latest_report(
        rt: Runtime) -> None:
    sh = Shard(rt)
    for t in range(0, 30):
        sh.report(t, 20.0)
    assert sh.command(5, {"setpoint_c": 23.0}) == []  # 24 s old, the device still says 20
    ev = drift(sh.tracker.flush(sh.engine))
    assert len(ev) == 1 and ev[0]["detectors"] == ["not_converged"]
    sh2 = Shard(rt)
    for t in range(0, 30):
        sh2.report(t, 23.0)
    sh2.command(5, {"setpoint_c": 23.0})
    assert drift(sh2.tracker.flush(sh2.engine)) == []


def test_a_model_only_verdict_in_a_window_with_a_command_is_explained_by_it(rt: Runtime) -> None:
    from twinguard.operators.detect.policy import CLASS_INDEX, Decisions
    from twinguard.operators.twin.engine import Windows
    from twinguard.schemas.features import FEATURE_INDEX, N_FEATURES

    sh = Shard(rt)
    sh.report(0, 20.0)
    sh.command(25, {"setpoint_c": 22.0})
    feats = np.zeros((4, N_FEATURES))
    feats[2, FEATURE_INDEX["range_viol_frac"]] = 0.5  # the physics detector fired on this one
    # ... the learned baselines on this one: the command explains that too
    feats[3, [FEATURE_INDEX["sig_max_abs_z_own"], FEATURE_INDEX["sig_max_abs_z_peer"]]] = 12.0
    feats[3, FEATURE_INDEX["baseline_windows"]] = 50
    meta = np.array([[0, 20_000, 30_000, 0, 0, 0, 1], [0, 100_000, 110_000, 0, 0, 0, 1],
                     [0, 20_000, 30_000, 0, 0, 0, 1], [0, 20_000, 30_000, 0, 0, 0, 1]],
                    dtype=np.int64)
    meta[:, 1:3] += T0
    fdi = CLASS_INDEX["false_data_injection"]
    d = Decisions(np.array([fdi] * 4), np.array([0.9, 0.9, 0.95, 0.9]))
    assert run_detectors(feats, rt.engine.detection)[3].any()
    sh.tracker.explain(sh.engine.store, Windows(feats, meta), d)
    assert d.cls.tolist() == [0, fdi, fdi, 0]  # commanded; later window; physics; baselines


def test_reaching_a_set_point_moves_the_signals_own_baseline_there(rt: Runtime) -> None:
    from twinguard.operators.twin import kernels as K

    sh = Shard(rt)
    for t in range(0, 60):
        sh.report(t, 20.0)
    k = rt.types.signal_index[rt.types.index["thermostat"]]["setpoint_c"]
    base = sh.engine.store.arrays["base"]
    assert base[0, K.B_SIG0 + k, 0] == 20.0
    sh.command(60, {"setpoint_c": 23.5})
    sh.report(61, 21.0)  # on its way: the baseline stays
    assert base[0, K.B_SIG0 + k, 0] == 20.0
    sh.report(62, 23.5)
    assert base[0, K.B_SIG0 + k, 0] == 23.5


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def test_commands_for_devices_without_a_twin_expire_after_the_ttl_as_dead_letters(rt: Runtime) -> None:
    clock = Clock()
    sh = Shard(rt)
    sh.engine = ShardEngine.fresh(replace(rt.engine, now=clock))
    sh.tracker = DesiredTracker(rt.types, ControlTable.from_types(rt.types), pending_ttl_s=60.0)
    sh.engine.on_batch.append(sh.tracker)
    assert sh.command(0, {}, action="view", device="thermostat-000404") == []
    clock.t += 30
    assert sh.command(0, {}, action="view", device="thermostat-000405") == []
    assert sh.tracker.expire(sh.engine) == []  # neither waited 60 s yet
    clock.t += 31
    out = sh.tracker.expire(sh.engine)
    assert [json.loads(m.value)["key"] for m in out] == ["thermostat-000404"]
    reason = json.loads(out[0].value)["reason"]
    assert "waited 61 s (activity.pending_command_ttl_s=60)" in reason and "no twin" in reason
    assert [a.device_ids[0] for a in sh.engine.store.unresolved] == ["thermostat-000405"]
    assert len(sh.engine.store.unresolved_at) == 1


def test_at_most_max_pending_commands_wait_the_oldest_go_first(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.tracker.max_pending = 3
    out: list[OutMsg] = []
    for k in range(5):
        out += sh.command(0, {}, action="view", device=f"thermostat-{k:06d}")
    assert [json.loads(m.value)["key"] for m in out] == ["thermostat-000000", "thermostat-000001"]
    assert "activity.max_pending_commands=3" in json.loads(out[0].value)["reason"]
    assert len(sh.engine.store.unresolved) == 3 == len(sh.engine.store.unresolved_at)


def test_a_restored_store_from_before_the_wait_was_timed_starts_the_clock_now(rt: Runtime) -> None:
    sh = Shard(rt)
    sh.command(0, {}, action="view", device="thermostat-000404")
    sh.engine.store.unresolved_at = []  # as an older snapshot restores
    assert sh.tracker.expire(sh.engine) == []
    assert len(sh.engine.store.unresolved_at) == 1
