"""The per-device column layout of a TwinStore: every array a device slot owns, its shape and initial
value, in one place.

The store allocates, grows and snapshots these arrays; the modules that compute on them (the window
kernels, desired state, risk) index the same names and columns. Keeping the layout here, below all of
them, is what lets the store and the modules that read it import one way only.
"""

from __future__ import annotations

import numpy as np

from twinguard.operators.twin import kernels as K
from twinguard.schemas.features import THREAT_CLASSES

# columns of arrays["risk"] (operators/twin/risk.py): shared reference time, decayed detection,
# intel-contact and auth-attempt accumulators, worst contact weight, port-sketch generation start
R_TREF, R_DET, R_INTEL, R_AUTH, R_INTEL_W, R_PORT_GEN = range(6)
N_RISK = 6

# the multivariate model (operators/detect/multivariate.py). Columns of arrays["mv_i"]: phase, windows
# in the phase, components kept, alarm on, windows above / below the limit in a row, windows seen,
# commands seen when learning started
MV_PHASE, MV_N, MV_K, MV_ON, MV_ABOVE, MV_BELOW, MV_SEEN, MV_CMDS = range(8)
N_MV_I = 8
# rows of arrays["mv_vec"], one column per signal: scale (0 = not in the model), EWMA of the
# standardised window means, EWMA of the squared standardised residuals
MV_SD, MV_ZS, MV_VS = range(3)
N_MV_VEC = 3
# arrays["mv_cal"][slot, statistic]: the limit, then mean and M2 of the cube root of the statistic,
# exceedances of the tail level, their summed excess and summed squared excess, how many values
# the moments hold (peaks over threshold: operators/detect/spot.py), and the last live value waiting
# to refine the limit (dspot; -1: none)
N_MV_STATS = 4
MV_LIMIT, MV_CMEAN, MV_CM2, MV_CNU, MV_CEXC, MV_CEXC2, MV_CN, MV_PEND = range(8)
N_MV_CAL = 8


def window_arrays(cap: int, width: int, ring_len: int) -> dict[str, np.ndarray]:
    """Window, ring and baseline state the kernels (operators/twin/kernels.py) update in place."""
    istate = np.zeros((cap, K.N_ISTATE), dtype=np.int64)
    istate[:, [K.I_LAST_SEQ, K.I_LAST_TS, K.I_WIN_START, K.I_CLOSED_END]] = -1
    sacc = np.zeros((cap, width, K.N_SACC))
    sacc[:, :, K.S_MIN], sacc[:, :, K.S_MAX] = np.inf, -np.inf
    return {
        "istate": istate,
        "acc": np.zeros((cap, K.N_ACC)),
        "sacc": sacc,
        "last_sig": np.full((cap, width), np.nan),
        "last_sig_ts": np.full((cap, width), -1, dtype=np.int64),
        "ewma": np.zeros((cap, width)),
        "ports": np.zeros((cap, 2), dtype=np.uint64),
        "ring": np.zeros((cap, ring_len, K.N_RING)),
        "ring_ws": np.full((cap, ring_len), -1, dtype=np.int64),
        "ring_ports": np.zeros((cap, ring_len, 2), dtype=np.uint64),
        "base": np.zeros((cap, K.B_SIG0 + width, 2)),
    }


def alert_arrays(cap: int) -> dict[str, np.ndarray]:
    """Per-class cooldowns and the device's threat history (operators/twin/engine.py)."""
    return {
        "alert_ts": np.full((cap, len(THREAT_CLASSES)), -(2**62), dtype=np.int64),
        "threats_total": np.zeros(cap, dtype=np.int64),
        "last_threat": np.full((cap, 2), -1, dtype=np.int64),  # class index, time
    }


def desired_arrays(cap: int, width: int) -> dict[str, np.ndarray]:
    """Commanded set-points and drift state (operators/twin/desired.py)."""
    return {
        "desired": np.full((cap, width), np.nan),
        "desired_ts": np.full((cap, width), -1, dtype=np.int64),
        "drift": np.zeros((cap, width), dtype=np.int64),
        "drift_off": np.zeros((cap, width), dtype=np.int64),
        # a verdict waits `grace_ms` of the device's event time for a late command explaining it
        "hit_ts": np.full((cap, width), -1, dtype=np.int64),
        "hit_kind": np.zeros((cap, width), dtype=np.int64),
        "hit_val": np.zeros((cap, width)),
        "commands": np.zeros(cap, dtype=np.int64),
    }


def risk_arrays(cap: int) -> dict[str, np.ndarray]:
    """Risk accumulators and the destination-port sketch: current, previous (operators/twin/risk.py)."""
    return {"risk": np.zeros((cap, N_RISK)), "risk_ports": np.zeros((cap, 2), dtype=np.uint64)}


# the multivariate model's context columns after a device's signals: time of day and day of week as
# the sine and cosine of their phase (operators/detect/multivariate.py keeps them where they matter)
N_MV_CONTEXT = 4


def multivariate_arrays(cap: int, signals: int) -> dict[str, np.ndarray]:
    """The multivariate model: learning sums, then the fitted PCA, limits and alarm state. Float32
    where precision allows (per-device bytes matter at a million devices); the running mean stays
    float64, since adding a tiny update to a large level would round away in float32."""
    width = signals + N_MV_CONTEXT
    return {
        "mv_i": np.zeros((cap, N_MV_I), dtype=np.int64),
        "mv_mu": np.zeros((cap, width)),
        "mv_vec": np.zeros((cap, N_MV_VEC, width), dtype=np.float32),
        # while learning the co-moment sums (Welford M2); once fitted, the loadings in columns
        # 0..k-1 and the eigenvalues in the last column (k < width always leaves it free)
        "mv_mat": np.zeros((cap, width, width), dtype=np.float32),
        "mv_cal": np.zeros((cap, N_MV_STATS, N_MV_CAL), dtype=np.float32),
    }


def device_arrays(cap: int, width: int, ring_len: int) -> dict[str, np.ndarray]:
    """Every per-device array of a store with `cap` slots and `width` signal columns."""
    return {**window_arrays(cap, width, ring_len), **alert_arrays(cap),
            **desired_arrays(cap, width), **risk_arrays(cap), **multivariate_arrays(cap, width)}
