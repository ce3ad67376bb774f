"""Window kernels against a slow, obviously-correct Python reference (also run with NUMBA_DISABLE_JIT=1)."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import numpy as np
import pytest

from tests.support.devices import METER, TYPES
from tests.support.meters import MeterEvent, meter_batch
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.features import FEATURE_INDEX as FI
from twinguard.schemas.features import N_FEATURES

W = 10_000
LATENESS = 2_000
# replay, auth, ports, rate, exfil, hmac, clone flips, seq jumps, skew ms, unauth, hijack, port burst
TRIGGERS = np.array([2, 8, 20, 5.0, 8.0, 1, 1, 2, 30_000, 1, 2, 5.0], dtype=np.float64)


def run_kernels(events: list[MeterEvent], chunk: int,
                early: list[tuple[str, int, np.ndarray]] | None = None) -> dict[tuple[str, int], np.ndarray]:
    """Feature row per (device, window start), feeding the events in chunks then flushing."""
    store = TwinStore(len(TYPES), 5)
    rows: dict[tuple[str, int], np.ndarray] = {}
    t = TYPES
    part_max = np.full(4, -1, dtype=np.int64)
    early = [] if early is None else early

    def collect(feats: np.ndarray, meta: np.ndarray, r: int) -> None:
        for j in range(r):
            if meta[j, 6] == 1:  # closed windows only; early rows have their own test
                rows[(store.device_ids[int(meta[j, 0])], int(meta[j, 1]))] = feats[j].copy()
            else:
                early.append((store.device_ids[int(meta[j, 0])], int(meta[j, 2]), feats[j].copy()))

    for k in range(0, len(events), chunk):
        b = meter_batch(events[k:k + chunk])
        slots = store.slots_for(b.device_ids, b.type_idx)
        feats, meta = np.empty((2 * len(b), N_FEATURES)), np.empty((2 * len(b), K.N_META), dtype=np.int64)
        r = K.update_batch(slots, b.ts, b.seq, b.signals, b.bytes_in, b.bytes_out, b.conns,
                           b.auth_fail, b.dst_port, b.src_hash, b.sig_state, b.fw_unknown,
                           b.partition, b.offset, b.auth_ok, np.zeros(len(b), dtype=np.int64),
                           np.zeros(len(b), dtype=np.int64), *store.kernel_state(), t.nominal_hz, t.lo, t.hi,
                           t.zfloor, t.roc_min, t.roc_max, t.inv, t.n_signals, W, 3, 1, LATENESS,
                           TRIGGERS, part_max, 2**62, feats, meta)
        collect(feats, meta, r)
    a = store.arrays
    feats, meta = np.empty((store.size, N_FEATURES)), np.empty((store.size, K.N_META), dtype=np.int64)
    r = K.close_due(store.size, np.full(4, 2**62), a["istate"], a["acc"], a["sacc"], a["ewma"], a["ports"],
                    a["ring"], a["ring_ws"], a["ring_ports"], a["base"], store.peer, store.peer_n,
                    t.nominal_hz, t.lo, t.hi, t.zfloor, t.n_signals, W, 3, feats, meta)
    collect(feats, meta, r)
    return rows


def reference(events: list[MeterEvent]) -> dict[tuple[str, int], dict[str, float]]:
    """Windows computed the slow way, in arrival order, following the documented rules."""
    windows: dict[str, list[tuple[int, list[tuple[MeterEvent, bool, bool, int]]]]] = defaultdict(list)
    state: dict[str, dict[str, int]] = defaultdict(
        lambda: {"ws": -1, "closed_end": -1, "last_seq": -1, "last_ts": -1})
    wm = -1  # highest event time of authentic, non-replayed messages
    for e in events:
        st = state[e.device]
        replay = st["last_seq"] >= 0 and e.seq <= st["last_seq"] and e.ts <= st["last_ts"]
        end = st["ws"] + W
        stale = end <= wm and (replay or e.ts < st["ws"])
        if st["ws"] >= 0 and (e.ts >= end or end + LATENESS <= wm or stale):
            st["closed_end"], st["ws"] = end, -1
        if st["ws"] < 0:
            st["ws"] = max(e.ts // W * W, st["closed_end"], (wm - LATENESS) // W * W)
            windows[e.device].append((st["ws"], []))
        gap = 0
        if not replay:
            gap = max(e.seq - st["last_seq"] - 1, 0) if st["last_seq"] >= 0 else 0
            st["last_seq"], st["last_ts"] = e.seq, max(st["last_ts"], e.ts)
            if e.sig_state == 0:
                wm = max(wm, e.ts)
        windows[e.device][-1][1].append((e, replay, e.ts < st["ws"], gap))
    out: dict[tuple[str, int], dict[str, float]] = {}
    for dev, wins in windows.items():
        for wstart, items in wins:
            trusted = [e for e, rep, late, _ in items if not rep and not late and e.sig_state == 0]
            longer = [len(it) for s, it in wins if wstart - 5 * W <= s <= wstart]
            out[(dev, wstart)] = {
                "count_10s": len(items), "count_60s": sum(longer),
                "log_bytes_out_10s": math.log1p(sum(e.bytes_out for e, *_ in items)),
                # login counts of forged or (signatures required) unsigned messages are not believed
                "auth_fail_10s": sum(e.auth for e, *_ in items if e.sig_state == 0),
                "replays_10s": sum(rep for _, rep, *_ in items),
                "seq_gaps_10s": sum(gap for *_, gap in items),
                "late_10s": sum(late for _, _, late, _ in items),
                "hmac_fail_10s": sum(e.sig_state == 2 for e, *_ in items),
                "unsigned_10s": sum(e.sig_state == 1 for e, *_ in items),
                "range_viol_frac": sum(not 180 <= e.value <= 260 for e in trusted) / max(len(trusted), 1),
                "sig0_pos": ((sum(e.value for e in trusted) / len(trusted)) - 180) / 80 if trusted else 0.0,
                "distinct_ports_exact": len({e.port for e, *_ in items if e.port >= 0}),
            }
    return out


def random_events(seed: int, devices: int = 6, n: int = 1500) -> list[MeterEvent]:
    rng = random.Random(seed)
    clock = {f"d{i}": 1_700_000_000_000 + rng.randrange(W) for i in range(devices)}
    seq = dict.fromkeys(clock, 0)
    history: dict[str, list[MeterEvent]] = defaultdict(list)
    events = []
    for _ in range(n):
        d = rng.choice(list(clock))
        roll = rng.random()
        if roll < 0.03 and history[d]:  # replay an old message verbatim
            events.append(rng.choice(history[d]))
            continue
        clock[d] += rng.choice((200, 500, 1000, 3000, 25_000)) if roll > 0.05 else -1500
        seq[d] += 1 if rng.random() > 0.05 else 3
        e = MeterEvent(d, clock[d], seq[d],
                       rng.choice((230.0, 231.0, 500.0)) if rng.random() < 0.05 else 230.5,
                       float(rng.randrange(100, 300)), float(rng.random() < 0.1),
                       rng.choice((-1, 443, 8883, rng.randrange(1, 1024))), rng.choice((0, 0, 0, 0, 1, 2)))
        history[d].append(e)
        events.append(e)
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 97, 5000])
def test_window_features_match_reference(seed: int, chunk: int) -> None:
    events = random_events(seed)
    got, want = run_kernels(events, chunk), reference(events)
    assert set(got) == set(want)
    for key, ref in want.items():
        row = got[key]
        for name, value in ref.items():
            if name == "distinct_ports_exact":
                assert row[FI["distinct_ports_10s"]] == pytest.approx(value, rel=0.25, abs=1.5), key
            else:
                assert row[FI[name]] == pytest.approx(value, abs=1e-9), (key, name)


def test_empty_batch_closes_nothing() -> None:
    assert run_kernels([], 10) == {}


def test_roc_ratio_flags_impossible_jumps_only() -> None:
    ok = [MeterEvent("m", 1_700_000_000_000 + i * 1000, i, 230.0 + (i % 2), 100, 0, 443, 0) for i in range(9)]
    jump = [*ok, MeterEvent("m", 1_700_000_009_000, 9, 255.0, 100, 0, 443, 0)]  # +24 V in 1 s > 20 V/s
    assert run_kernels(ok, 50)[("m", 1_700_000_000_000)][FI["roc_viol_frac"]] == 0
    row = run_kernels(jump, 50)[("m", 1_700_000_000_000)]
    assert row[FI["roc_viol_frac"]] == pytest.approx(0.1)
    assert row[FI["sig0_roc_ratio"]] > 1


def test_invariant_power_factor() -> None:
    b = meter_batch([MeterEvent("m", 1_700_000_000_000, 0, 230.0, 1, 0, -1, 0)])
    b.signals[0, 2] = 230.0 * 10.0 * 1.5  # P > V*I: impossible power factor
    assert K._invariants_broken(b.signals[0], METER, TYPES.inv)
    b.signals[0, 2] = 230.0 * 10.0 * 0.9
    assert not K._invariants_broken(b.signals[0], METER, TYPES.inv)


def test_own_baseline_learns_then_flags_a_burst() -> None:
    base = 1_700_000_000_000
    events = [MeterEvent("m", base + i * 1000, i, 230.0, 200.0, 0, 443, 0) for i in range(120)]
    burst = [MeterEvent("m", base + 120_000 + i * 50, 120 + i, 230.0, 200.0, 0, 443, 0) for i in range(200)]
    rows = run_kernels(events + burst, 64)
    quiet = rows[("m", base + 100_000)]
    loud = rows[("m", base + 120_000)]
    assert quiet[FI["baseline_windows"]] >= 3
    assert abs(quiet[FI["count_z_own"]]) < 1
    assert loud[FI["count_z_own"]] > 5
    assert loud[FI["rate_ratio_10s"]] == pytest.approx(200 / (10 * TYPES.nominal_hz[METER]))


def test_snapshot_is_an_independent_copy() -> None:
    import pickle

    store = TwinStore(len(TYPES), 5)
    store.slots_for(["a", "b"], np.array([METER, METER]))
    snap = pickle.loads(pickle.dumps(store.snapshot()))
    store.arrays["acc"][0, 0] = 99.0
    store.slots_for(["c"], np.array([METER]))
    assert snap.arrays["acc"][0, 0] == 0.0
    assert snap.device_ids == ["a", "b"] and snap.size == 2
    assert snap.slots_for(["c"], np.array([METER]))[0] == 2  # a restored store keeps growing


def test_a_forged_message_fires_an_early_row_at_its_own_time() -> None:
    base = 1_700_000_000_000
    events = [MeterEvent("m", base + i * 1000, i, 230.0, 200.0, 0, 443, 0) for i in range(4)]
    events.append(MeterEvent("m", base + 4_500, 4, 230.0, 200.0, 0, 443, 2))  # bad HMAC, shard time 3000
    events += [MeterEvent("m", base + 5_000 + i * 1000, 5 + i, 230.0, 200.0, 0, 443, 2) for i in range(3)]
    early: list[tuple[str, int, np.ndarray]] = []
    rows = run_kernels(events, 3, early)
    assert [(d, end) for d, end, _ in early] == [("m", base + 4_501)]  # once per window, at its time
    assert early[0][2][FI["hmac_fail_10s"]] == 1
    assert rows[("m", base)][FI["hmac_fail_10s"]] == 4  # the closed window still has it all


def test_a_partition_running_ahead_does_not_close_another_partitions_windows() -> None:
    base = 1_700_000_000_000
    slow = [MeterEvent("b", base + i * 1000, i, 230.0, 200.0, 0, 443, 0, partition=1) for i in range(5)]
    fast = [MeterEvent("a", base + 60_000 + i * 1000, i, 230.0, 200.0, 0, 443, 0) for i in range(30)]
    more = [MeterEvent("b", base + 5_000 + i * 1000, 5 + i, 230.0, 200.0, 0, 443, 0, partition=1)
            for i in range(5)]
    rows = run_kernels(slow + fast + more, 7)
    assert rows[("b", base)][FI["count_10s"]] == 10  # one window, untouched by partition 0's time
    assert rows[("b", base)][FI["late_10s"]] == 0
