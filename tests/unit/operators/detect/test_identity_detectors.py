"""Cloning, unauthorized access, new destinations, hijack, clock skew and burst detectors: kernel
helpers, hand-made event streams through ShardEngine (attacks and the benign look-alikes that must not
fire), and simulated fleets end to end."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import numpy as np
import pytest

from tests.support.devices import THERMOSTAT, TYPES
from tests.support.engines import rules_engine
from tests.support.thermostats import T0, Msg, address_hash, thermostat_batch, warm_stream
from twinguard.operators.twin import kernels as K
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import run_offline
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig


def threats_of(msgs: list[Msg]) -> list[dict[str, object]]:
    eng = rules_engine()
    out = eng.process(thermostat_batch(msgs)) + eng.flush()
    return [msgspec.json.decode(m.value) for m in out if m.role == "threats"]


def classes(msgs: list[Msg]) -> set[str]:
    return {str(t["threat"]) for t in threats_of(msgs)}


def tail(start: int, n: int, **kw: object) -> list[Msg]:
    return [replace(Msg(T0 + 1000 * k, k), **kw) for k in range(start, start + n)]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- kernel helpers


def test_seq_jump_counts_regressions_and_leaps_beyond_the_rate_only() -> None:
    assert K._seq_jumped(-1, 5, 1000, 1.0) == 0.0
    assert K._seq_jumped(10, 11, 1000, 1.0) == 0.0
    assert K._seq_jumped(10, 13, 1000, 1.0) == 0.0  # two drops: within the rate
    assert K._seq_jumped(10, 3, 1000, 1.0) == 1.0  # went back on a fresh timestamp
    assert K._seq_jumped(10, 500, 1000, 1.0) == 1.0  # 489 missing in one second
    assert K._seq_jumped(10, 500, 600_000, 1.0) == 0.0  # ... but fine after ten minutes offline


def test_rate_burst_needs_several_messages() -> None:
    assert K._rate_burst_ratio(5.0, 0.5) == 0.0
    assert K._rate_burst_ratio(6.0, 0.5) == pytest.approx(6.0)


# --------------------------------------------------------------- hand-made streams, engine


def test_a_quiet_device_raises_nothing() -> None:
    assert classes(warm_stream(90)) == set()


def test_one_address_change_is_not_cloning_nor_unauthorized() -> None:
    moved = warm_stream(60) + tail(60, 30, src="10.16.0.99")
    moved[-5].ok, moved[-12].ok = 1.0, 1.0  # routine logins after the move
    assert classes(moved) == set()


def test_alternating_source_addresses_are_cloning() -> None:
    msgs = warm_stream(60)
    for k in range(60, 70):
        msgs.append(Msg(T0 + 1000 * k, k))
        msgs.append(Msg(T0 + 1000 * k + 400, 7 + k, src="203.0.113.9"))  # own counter
    found = threats_of(msgs)
    assert {t["threat"] for t in found} == {"cloning"}
    first = min(int(str(t["window_end"])) for t in found)
    assert first - (T0 + 60_400) <= 2000


def test_a_second_sender_behind_the_same_address_is_cloning_by_its_counter() -> None:
    msgs = warm_stream(60)
    for k in range(60, 66):
        msgs.append(Msg(T0 + 1000 * k, k))
        msgs.append(Msg(T0 + 1000 * k + 500, 4000 + k))
    assert "cloning" in classes(msgs)


def test_a_reboot_resetting_the_counter_is_not_cloning() -> None:
    msgs = warm_stream(60) + [Msg(T0 + 1000 * k, k - 60) for k in range(60, 80)]
    assert classes(msgs) == set()


def test_login_from_a_new_address_or_by_a_new_principal_is_unauthorized() -> None:
    from_outside = warm_stream(60) + [Msg(T0 + 60_500, 60, src="198.51.100.7", ok=1.0)] + tail(61, 10)
    assert classes(from_outside) == {"unauthorized_access"}
    new_user = warm_stream(60) + [Msg(T0 + 60_000, 60, ok=1.0, principal="admin")] + tail(61, 10)
    assert classes(new_user) == {"unauthorized_access"}


def test_logins_during_learning_and_by_known_principals_are_fine() -> None:
    msgs = warm_stream(60)
    msgs[5].ok, msgs[5].principal = 1.0, "operator"
    msgs += tail(60, 20)
    msgs[-3].ok, msgs[-3].principal = 1.0, "operator"
    assert classes(msgs) == set()


def test_new_destination_with_usual_traffic_is_an_anomaly_not_hijack() -> None:
    msgs = warm_stream(60) + tail(60, 5, dst="10.0.0.11")
    assert classes(msgs) == {"anomaly"}


def test_a_persistent_new_channel_off_profile_both_ways_is_hijack() -> None:
    msgs = warm_stream(60)
    for k in range(60, 75):
        msgs.append(Msg(T0 + 1000 * k, 2 * k))
        msgs.append(Msg(T0 + 1000 * k + 300, 2 * k + 1, dst="192.0.2.66", port=4444, bout=1100,
                        bin=900))
    found = threats_of(msgs)
    assert "hijack" in {t["threat"] for t in found}
    first = min(int(str(t["window_end"])) for t in found if t["threat"] == "hijack")
    assert first - (T0 + 60_300) <= 2000


def test_scan_probes_are_scan_not_hijack() -> None:
    msgs = warm_stream(60) + [Msg(T0 + 60_000 + 150 * j, 60 + j, port=1000 + j, bout=60, bin=10)
                              for j in range(30)]
    assert classes(msgs) & {"scan", "hijack"} == {"scan"}


def test_a_message_held_back_far_behind_its_partition_is_replay() -> None:
    other = [Msg(T0 + 1000 * k, k, device="thermostat-000002", src="10.16.0.3") for k in range(120)]
    late = [Msg(T0 + 1000 * k, k) for k in range(50)] + [Msg(T0 + 50_000, 50)]
    merged = other[:100] + late[:50] + [late[50]] + other[100:]
    # device 1's message 50 arrives after device 2 reached t=100 s: 50 s behind the mark
    found = {(t["device_id"], t["threat"]) for t in threats_of(merged)}
    assert ("thermostat-000001", "replay") in found
    assert all(d == "thermostat-000001" for d, _ in found)


def test_a_flood_starting_late_in_a_window_fires_within_two_seconds() -> None:
    msgs = warm_stream(57) + [Msg(T0 + 57_000 + 100 * j, 57 + j) for j in range(40)]
    found = [t for t in threats_of(msgs) if t["threat"] == "dos"]
    assert found and min(int(str(t["window_end"])) for t in found) - (T0 + 57_000) <= 2000


# ----------------------------------------------------------------------- simulated, end to end


@pytest.fixture(scope="module")
def identity_fleet(runtime: Runtime) -> tuple[FleetSimulator, list[dict[str, object]]]:
    """Its own fleet: 150 devices attacked with the identity classes only, and their look-alikes."""
    fleet = FleetSimulator(SimConfig(devices=150, duration_s=80, seed=21, attack_fraction=0.1,
                                     attacks=("cloning", "unauthorized_access", "hijack")),
                           runtime.types, runtime.keys)
    run = run_offline(((b.keys, b.values) for b in fleet.batches()), runtime)
    return fleet, [msgspec.json.decode(m.value) for m in run.outputs if m.role == "threats"]


def test_simulated_identity_attacks_are_detected_with_the_right_class(identity_fleet) -> None:  # type: ignore[no-untyped-def]
    fleet, threats = identity_fleet
    ev = evaluate(threats, fleet.labels, {d for d, _ in fleet.devices})
    assert {a.label.threat for a in ev.attacks} == {"cloning", "unauthorized_access", "hijack"}
    assert all(a.right_class for a in ev.attacks), [(a.label, a.classes_seen) for a in ev.attacks]
    within = sum(a.time_to_detect_ms is not None and a.time_to_detect_ms <= 2000 for a in ev.attacks)
    assert within >= 0.9 * len(ev.attacks)


def test_benign_lookalikes_raise_no_alarm(identity_fleet) -> None:  # type: ignore[no-untyped-def]
    fleet, threats = identity_fleet
    la = fleet._lookalikes
    benign = {fleet.devices[d][0] for d in (*la.ip_change, *la.fw_update, *la.bursts)}
    assert len(benign) >= 6
    assert not [t for t in threats if t["device_id"] in benign]


def test_one_huge_upload_to_a_new_destination_is_exfiltration_at_once() -> None:
    msgs = warm_stream(60) + [Msg(T0 + 60_000, 60, dst="203.0.113.5", port=443, bout=20 * 220.0)]
    found = threats_of(msgs + tail(61, 5))
    assert {t["threat"] for t in found} >= {"exfiltration"}
    assert min(int(str(t["window_end"])) for t in found if t["threat"] == "exfiltration") <= T0 + 60_001


def test_one_large_message_to_the_usual_broker_is_not_exfiltration() -> None:
    # mid-window: at a window's first two messages the per-window average alone still decides
    msgs = warm_stream(65) + [Msg(T0 + 65_000, 65, bout=20 * 220.0)] + tail(66, 20)
    assert classes(msgs) == set()


def test_a_login_right_after_a_move_is_not_unauthorized() -> None:
    moved = warm_stream(60) + tail(60, 30, src="10.16.0.99")
    moved[60].ok = 1.0  # the first message from the new address carries a routine login
    assert classes(moved) == set()


def test_a_foreign_login_session_of_several_messages_is_unauthorized() -> None:
    msgs = warm_stream(60) + [Msg(T0 + 60_100, 60, src="198.51.100.7", ok=1.0),
                              Msg(T0 + 60_900, 61, src="198.51.100.7", ok=1.0)] + tail(62, 10)
    assert classes(msgs) == {"unauthorized_access"}


def test_learned_sets_tell_apart_addresses_that_share_one_hash_bit() -> None:
    # the same bit under the first hash alone
    home, outside = address_hash("10.80.0.121"), address_hash("203.0.113.173")
    assert (home * 40503) % K.KNOWN_BITS == (outside * 40503) % K.KNOWN_BITS
    assert K._has(K._bit(home), K._bit(home))
    assert not K._has(K._bit(home), K._bit(outside))


def test_a_snapshot_with_fewer_state_columns_is_widened_on_resume() -> None:
    import pickle

    from twinguard.operators.twin.store import TwinStore

    store = TwinStore(len(TYPES), 5)
    store.slots_for(["a", "b"], np.array([THERMOSTAT, THERMOSTAT]))
    store.arrays["istate"][1, K.I_LAST_SEQ] = 41
    old = store.snapshot()
    old.arrays["istate"] = old.arrays["istate"][:, :15].copy()  # before the identity columns
    old.arrays["acc"] = old.arrays["acc"][:, :16].copy()
    restored = pickle.loads(pickle.dumps(old)).upgrade()
    assert restored.arrays["istate"].shape[1] == K.N_ISTATE and restored.arrays["acc"].shape[1] == K.N_ACC
    assert restored.arrays["istate"][1, K.I_LAST_SEQ] == 41 and restored.arrays["istate"][1, K.I_KSRC] == 0
