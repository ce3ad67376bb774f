"""Learning-mode anomaly score, the baseline_deviation detector, its place in decide, wide types."""

from __future__ import annotations

import math

import numpy as np

from tests.support.devices import TYPES
from tests.support.engines import rules_engine
from tests.support.thermostats import thermostat_batch, warm_stream
from twinguard.operators.detect.anomaly import anomaly_score, deviation
from twinguard.operators.detect.detectors import DETECTORS, PRIORITY, run_detectors
from twinguard.operators.detect.policy import CLASS_INDEX, Decisions, decide
from twinguard.operators.settings import DetectionConfig
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.engine import Windows
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.device_types import MAX_SIGNALS, DeviceType, Signal, build_table
from twinguard.schemas.features import FEATURE_INDEX as FI
from twinguard.schemas.features import N_FEATURES, THREAT_CLASSES

CFG = DetectionConfig()


def row(**values: float) -> np.ndarray:
    x = np.zeros((1, N_FEATURES))
    x[0, FI["baseline_windows"]] = 100
    for k, v in values.items():
        x[0, FI[k]] = v
    return x


def test_score_is_half_at_the_configured_sigmas_and_needs_both_baselines() -> None:
    z = CFG.anomaly_z
    at = row(sig_max_abs_z_own=z, sig_max_abs_z_peer=z + 3)
    assert math.isclose(anomaly_score(at, z)[0], 0.5)
    own_only = row(sig_max_abs_z_own=40.0, sig_max_abs_z_peer=1.0)  # e.g. a pump switching on
    assert deviation(own_only)[0] == 1.0
    assert anomaly_score(row(count_z_own=60, count_z_peer=50), z)[0] > 0.9
    assert anomaly_score(row(count_z_own=-60, count_z_peer=-50), z)[0] == 0.0  # a partial window
    assert anomaly_score(row(sig_max_abs_z_own=60, sig_max_abs_z_peer=50), z)[0] > 0.9
    assert anomaly_score(row(), z)[0] == 0.0
    # volumes are judged against anomaly_volume_z: a 2-3x traffic burst is not an anomaly alone
    vz = CFG.anomaly_volume_z
    assert math.isclose(anomaly_score(row(bytes_out_z_own=vz, bytes_out_z_peer=vz), z, vz)[0], 0.5)
    assert anomaly_score(row(bytes_out_z_own=8, bytes_out_z_peer=8), z, vz)[0] < 0.5


def test_baseline_deviation_fires_only_for_warm_devices_and_comes_last() -> None:
    x = np.vstack([row(bytes_out_z_own=12, bytes_out_z_peer=12), row(bytes_out_z_own=3,
                                                                       bytes_out_z_peer=9)])
    cold = x.copy()
    cold[:, FI["baseline_windows"]] = CFG.warmup_windows - 1
    col = [d.name for d in DETECTORS].index("baseline_deviation")
    assert run_detectors(x, CFG)[:, col].tolist() == [True, False]
    assert not run_detectors(cold, CFG)[:, col].any()
    assert PRIORITY[-1] == "anomaly"


def probs_for(cls: str, p: float) -> np.ndarray:
    out = np.full((1, len(THREAT_CLASSES)), (1 - p) / (len(THREAT_CLASSES) - 1))
    out[0, CLASS_INDEX[cls]] = p
    return out


def test_typed_detectors_and_a_confident_model_win_over_anomaly() -> None:
    names = [d.name for d in DETECTORS]
    only_anomaly = np.zeros((1, len(DETECTORS)), dtype=bool)
    only_anomaly[0, names.index("baseline_deviation")] = True
    with_flood = only_anomaly.copy()
    with_flood[0, names.index("flood")] = True
    warm, score = np.array([True]), np.array([0.7])
    unsure = probs_for("normal", 0.9)
    d = decide(only_anomaly, unsure, warm, CFG, score)
    assert THREAT_CLASSES[d.cls[0]] == "anomaly" and d.score[0] == 0.7
    d = decide(with_flood, unsure, warm, CFG, score)
    assert THREAT_CLASSES[d.cls[0]] == "dos"
    d = decide(only_anomaly, probs_for("exfiltration", 0.95), warm, CFG, score)
    assert THREAT_CLASSES[d.cls[0]] == "exfiltration"
    d = decide(only_anomaly, probs_for("exfiltration", 0.95), np.array([False]), CFG, score)
    assert THREAT_CLASSES[d.cls[0]] == "anomaly"  # the model may not judge a cold device alone


def test_normal_rows_carry_the_anomaly_score() -> None:
    none = np.zeros((2, len(DETECTORS)), dtype=bool)
    d = decide(none, np.vstack([probs_for("normal", 0.99)] * 2), np.array([True, True]), CFG,
               np.array([0.1, 0.3]))
    assert d.cls.tolist() == [0, 0] and d.score.tolist() == [0.1, 0.3]


def test_wide_type_aggregates_cover_every_signal() -> None:
    """Signal 6 of an 8-signal type moves: the aggregate sees it, per-signal columns stay put."""
    k = 8
    dt = DeviceType("wide", "", 1.0, (), tuple(
        Signal(f"s{j}", "", -math.inf, math.inf, -1e18, 1e18) for j in range(k)))
    types = build_table([dt])
    assert types.width == k
    store = TwinStore(1, 5, width=k)
    n = 60
    rng = np.random.default_rng(0)
    sig = 10 + rng.normal(0, 0.1, (n, k))
    sig[-2, 6] = 30.0  # its window closes when the last event arrives
    slots = store.slots_for(["d"] * n, np.zeros(n, dtype=np.int64))
    feats, meta = np.zeros((2 * n, N_FEATURES)), np.zeros((2 * n, K.N_META), dtype=np.int64)
    z, iz = np.zeros(n), np.zeros(n, dtype=np.int64)
    ts = np.arange(n, dtype=np.int64) * 1000
    part_max = np.full(1, -1, dtype=np.int64)
    r = K.update_batch(slots, ts, np.arange(n, dtype=np.int64), sig, z, z, z, z,
                       np.full(n, -1, dtype=np.int64), iz, iz, iz, iz, iz, z, iz, iz,
                       *store.kernel_state(),
                       types.nominal_hz, types.lo, types.hi, types.zfloor, types.roc_min, types.roc_max,
                       types.inv, types.n_signals, 1000, 3, 0, 0,
                       np.array([2, 8, 20, 5.0, 8.0, 1, 2, 2, 30_000, 1, 1, 5.0]), part_max,
                       2**62, feats, meta)
    last = feats[r - 1]
    assert last[FI["sig_max_abs_z_own"]] >= 20.0
    per_signal = [last[FI[f"sig{j}_z_own"]] for j in range(MAX_SIGNALS)]
    assert max(abs(v) for v in per_signal) < 5.0
    assert last[FI["sig_min_margin"]] == 1.0  # no physical range: no margin to report
    assert np.isfinite(feats[:r]).all()


def test_a_relay_switching_is_not_a_deviation_but_a_level_leaving_its_baseline_is() -> None:
    """heating (unit bool: a state signal) switches on after a minute off; temperature_c jumps."""
    k = TYPES.signal_index[TYPES.index["thermostat"]]
    assert TYPES.zfloor[TYPES.index["thermostat"], k["heating"]] == 1.0  # the whole range
    assert TYPES.zfloor[TYPES.index["thermostat"], k["temperature_c"]] == 0.05 * 80

    def last_window_z(signal: str, value: float) -> float:
        eng, rows = rules_engine(), []

        def log(_st: TwinStore, w: Windows, _d: Decisions) -> None:
            rows.extend(w.features[w.meta[:, 6] == 1, FI["sig_max_abs_z_own"]].tolist())

        eng.on_windows.append(log)
        b = thermostat_batch(warm_stream(80))
        b.signals[70:, k[signal]] = value
        eng.process(b)
        eng.flush()
        return float(rows[-1])

    assert last_window_z("heating", 1.0) <= 1.0  # on for a whole window: one range, one sigma
    assert last_window_z("temperature_c", 45.0) > 5.0
