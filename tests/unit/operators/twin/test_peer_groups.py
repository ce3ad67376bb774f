"""Peer baselines per (type, firmware) group: a device is compared with the devices running its own
firmware once that group has learned, with its whole type before; groups survive snapshots."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np

from tests.support.devices import TYPES
from tests.support.engines import rules_engine
from tests.support.thermostats import T0, Msg, thermostat_batch
from twinguard.operators.detect.policy import Decisions
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.engine import ShardEngine, Windows
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.features import FEATURE_INDEX

BOUT_Z_PEER = FEATURE_INDEX["bytes_out_z_peer"]


def fleet(seconds: int, firmware: bool) -> list[tuple[Msg, str]]:
    """20 thermostats on firmware 4.2.0 (220 B per message) and 20 on 4.3.0 (660 B), 1 Hz."""
    out = []
    for k in range(seconds):
        for d in range(40):
            fw = "4.2.0" if d < 20 else "4.3.0"
            m = Msg(T0 + 1000 * k + d, k, device=f"thermostat-{d:06d}", bout=220.0 if d < 20 else 660.0)
            out.append((m, fw if firmware else ""))
    return out


def peer_z_of_newcomer(firmware: bool) -> float:
    """bytes_out_z_peer of the first whole window of a new 4.2.0 device that sends 4.3.0-sized messages."""
    eng = rules_engine()
    rows: list[float] = []

    def log(store: TwinStore, w: Windows, _d: Decisions) -> None:
        for r in range(len(w)):
            if store.device_ids[int(w.meta[r, 0])] == "newcomer" and w.meta[r, 6] == 1:
                rows.append(float(w.features[r, BOUT_Z_PEER]))

    eng.on_windows.append(log)
    msgs = fleet(90, firmware)
    msgs += [(Msg(T0 + 1000 * k + 50, k, device="newcomer", bout=660.0), "4.2.0" if firmware else "")
             for k in range(90, 120)]
    feed(eng, msgs)
    eng.flush()
    return rows[1]  # the newcomer's first window is partial


def feed(eng: ShardEngine, msgs: list[tuple[Msg, str]]) -> None:
    for i in range(0, len(msgs), 500):
        part = msgs[i:i + 500]
        b = thermostat_batch([m for m, _ in part])
        eng.process(replace(b, fws=[fw or None for _, fw in part]))


def test_a_device_off_its_firmware_group_stands_out_where_its_type_hides_it() -> None:
    # the type mixes both firmware populations: 660 B per message is ordinary for a thermostat
    assert abs(peer_z_of_newcomer(firmware=False)) < 3
    # ... but not for one on firmware 4.2.0
    assert peer_z_of_newcomer(firmware=True) > 10


def test_groups_are_per_type_and_firmware_and_survive_a_snapshot() -> None:
    eng = rules_engine()
    feed(eng, fleet(40, firmware=True))
    st = eng.store
    assert len(st.peer_groups) == 2
    rows = {fw: st.peer_groups[(int(st.arrays["istate"][0, K.I_TYPE]), fw)] for fw in ("4.2.0", "4.3.0")}
    assert min(rows.values()) >= st.n_types  # after the type rows
    assert st.arrays["istate"][0, K.I_PEER] == rows["4.2.0"] + 1
    assert st.arrays["istate"][st.index["thermostat-000025"], K.I_PEER] == rows["4.3.0"] + 1
    # clean windows teach the type row and the group row alike
    t = int(st.arrays["istate"][0, K.I_TYPE])
    assert st.peer_n[rows["4.2.0"]] + st.peer_n[rows["4.3.0"]] == st.peer_n[t] > 0
    restored = pickle.loads(pickle.dumps(st.snapshot())).upgrade()
    assert restored.peer_groups == st.peer_groups
    np.testing.assert_array_equal(restored.arrays["istate"][: st.size, K.I_PEER],
                                  st.arrays["istate"][: st.size, K.I_PEER])


def test_a_firmware_update_moves_the_device_to_its_new_group() -> None:
    eng = rules_engine()
    feed(eng, fleet(20, firmware=True))
    st = eng.store
    s = st.index["thermostat-000000"]
    before = int(st.arrays["istate"][s, K.I_PEER])
    feed(eng, [(Msg(T0 + 30_000, 30, device="thermostat-000000"), "4.3.0")])
    assert st.fws[s] == "4.3.0"
    assert st.arrays["istate"][s, K.I_PEER] == st.arrays["istate"][st.index["thermostat-000030"], K.I_PEER]
    assert st.arrays["istate"][s, K.I_PEER] != before


def test_an_old_store_without_groups_joins_them_on_upgrade() -> None:
    eng = rules_engine()
    feed(eng, fleet(5, firmware=True))
    old = eng.store.snapshot()
    old.arrays["istate"] = old.arrays["istate"][:, : K.I_PEER]  # as stored before the column
    old.peer, old.peer_n = old.peer[: old.n_types], old.peer_n[: old.n_types]
    del old.peer_groups
    restored = pickle.loads(pickle.dumps(old)).upgrade(TYPES.firmware)
    assert len(restored.peer_groups) == 2
    assert (restored.arrays["istate"][: restored.size, K.I_PEER] > 0).all()


def test_firmware_off_the_allowlist_forms_no_group() -> None:
    eng = rules_engine()
    feed(eng, [(Msg(T0 + k, k, device=f"thermostat-{k:06d}"), f"6.6.{k}") for k in range(50)])
    st = eng.store
    assert st.peer_groups == {} and st.peer.shape[0] == st.n_types
    assert not st.arrays["istate"][: st.size, K.I_PEER].any()
    assert st.fws[7] == "6.6.7"  # still what the twin reports
