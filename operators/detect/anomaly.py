"""Learning-mode anomaly score: how far a window is from its device's learned baselines, in [0, 1].

No labels: the kernels learn, per device, a fast own baseline (EWMA mean/variance of volumes and
signal means) and, per device type, a slow peer baseline. A window deviates when a quantity is far
from **both**: far from the device's own recent behaviour alone is often an ordinary state change
(a pump switching on moves its flow 20 own sigmas), far from the type's slow baseline alone is often
a device that is simply different. For each quantity the deviation is min(|z own|, |z peer|);
the window's deviation m is the largest of them (message count, bytes out, signal means).
Volumes count upwards only: more messages or bytes than learned is the security-relevant
direction, while fewer is what every partial window looks like (end of input, a device that
stopped mid-window) and belongs to the twin's liveness status, not to a threat.

Volumes have typed detectors with their own thresholds (flood: 5x the nominal rate, exfiltration:
8x the learned bytes per message), and ordinary traffic bursts of 2-3x move a steady device's byte
count 5-8 sigmas, so volume deviations are judged against `anomaly_volume_z` (default 10) instead:
they are scaled by anomaly_z / anomaly_volume_z before the max.

score = m / (m + anomaly_z), so 0.5 means "m = anomaly_z sigmas", 0 no deviation, → 1 extreme.
Physical limits (range, rate of change, invariants) are not part of it: the typed `physics`
detector owns them. Until a device and its type are warm every z is 0, so the score is 0.

Once a device's multivariate model is live (operators/detect/multivariate.py; rows that carry its
verdict columns after the features), its signals are judged there, against limits calibrated on its
own learning period, and leave this score: a fixed anomaly_z over-alarms on heavy-tailed signals
(spiky server metrics) and under-alarms on smooth ones. Volumes stay here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect import multivariate as MV
from twinguard.schemas.features import FEATURE_INDEX as FI
from twinguard.schemas.features import N_FEATURES

F64 = npt.NDArray[np.float64]
# (own, peer) z-score columns of the same quantity: volumes (upwards only), then signals (each
# already the max |z| over the signals)
VOLUMES: tuple[tuple[str, str], ...] = (
    ("count_z_own", "count_z_peer"),
    ("bytes_out_z_own", "bytes_out_z_peer"),
)
SIGNALS: tuple[str, str] = ("sig_max_abs_z_own", "sig_max_abs_z_peer")
_OWN = np.array([FI[a] for a, _ in VOLUMES])
_PEER = np.array([FI[b] for _, b in VOLUMES])
THRESHOLD_SCORE = 0.5  # the score at exactly anomaly_z sigmas


def deviation(x: F64, volume_weight: float = 1.0) -> F64:
    """Per row, the largest min(z own, z peer) over the paired quantities (sigmas; volumes scaled
    by volume_weight)."""
    if x.shape[0] == 0:
        return np.zeros(0)
    volumes = np.minimum(x[:, _OWN], x[:, _PEER]).max(axis=1) * volume_weight
    signals = np.minimum(np.abs(x[:, FI[SIGNALS[0]]]), np.abs(x[:, FI[SIGNALS[1]]]))
    if x.shape[1] >= N_FEATURES + MV.N_OUT:
        signals = np.where(x[:, N_FEATURES + MV.O_PHASE] == MV.LIVE, 0.0, signals)
    return np.asarray(np.maximum(np.maximum(volumes, 0.0), signals), dtype=np.float64)


def anomaly_score(x: F64, anomaly_z: float, anomaly_volume_z: float | None = None) -> F64:
    """Per row, m / (m + anomaly_z) with m = deviation(x): 0.5 at the configured threshold
    (anomaly_z sigmas for signals, anomaly_volume_z for volumes; None = the same)."""
    m = deviation(x, anomaly_z / (anomaly_volume_z or anomaly_z))
    return m / (m + anomaly_z)
