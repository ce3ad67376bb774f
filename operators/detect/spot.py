"""Peaks-over-threshold limits (SPOT, Siffer et al. KDD 2017) from running sums, without labels.

A statistic's limit for a target risk q (the share of normal windows allowed above it) is the
(1 - q) quantile of its normal distribution. Far in the tail there are too few values to read it
off, so SPOT fits a generalised Pareto distribution (GPD) to the excesses over a high level t
(extreme-value theory: whatever the distribution, its excesses over a high level are GPD) and
extrapolates: z_q = t + sigma / xi * ((q n / N_t)^-xi - 1), with N_t peaks among n values.

Per device and statistic the state is a handful of floats (count, peaks, sum and sum of squares of
the excesses), so the GPD is fitted by moments rather than by maximum likelihood over stored peaks.
With few peaks the shape estimate is noisy; it is shrunk towards 0 (an exponential tail) and kept in
[XI_MIN, XI_MAX]: a negative shape puts a hard end on the tail, and an end guessed from a handful of
peaks would put the limit inside normal data.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from numba import njit

QUANTILE, SPOT, DSPOT = 0, 1, 2
METHODS = {"quantile": QUANTILE, "spot": SPOT, "dspot": DSPOT}
PEAKS_WANTED = 30  # the level t is put where the calibration expects about this many peaks ...
LEVEL_MIN, LEVEL_MAX = 0.90, 0.98  # ... within these quantiles (0.98: the paper's choice)
MIN_PEAKS = 10  # fewer peaks: no tail fit (the caller falls back to its normal quantile)
XI_PRIOR = 20.0  # pseudo-peaks of shape 0 added to the moment estimate of the shape
XI_MIN, XI_MAX = -0.25, 0.5
HORIZON_CALIBRATIONS = 4  # DSPOT forgets with a horizon of this many calibration lengths ...
HORIZON_MIN = 2000  # ... and at least this many windows


def level_quantile(n_cal: int) -> float:
    """The quantile of the calibration scores where peaks start: PEAKS_WANTED peaks expected."""
    return min(max(1.0 - PEAKS_WANTED / max(n_cal, 1), LEVEL_MIN), LEVEL_MAX)


def level_z(n_cal: int) -> float:
    """The level in spreads above the mean of a (near-normal) calibration score."""
    return NormalDist().inv_cdf(level_quantile(n_cal))


def horizon(n_cal: int) -> float:
    """DSPOT's memory in windows: long against the calibration, so one incident cannot move it."""
    return float(max(HORIZON_CALIBRATIONS * n_cal, HORIZON_MIN))


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def gpd_quantile(level: float, n: float, nu: float, s1: float, s2: float, risk: float) -> float:
    """The value exceeded with probability `risk`, from nu peaks over `level` among n values whose
    excesses sum to s1 (squares: s2); NaN when the tail cannot be fitted (too few peaks, or the
    risk is not inside the tail)."""
    if nu < MIN_PEAKS or risk * n >= nu or s1 <= 0.0:
        return math.nan
    mean = s1 / nu
    var = max(s2 / nu - mean * mean, 1e-12 * mean * mean)
    xi = 0.5 * (1.0 - mean * mean / var) * nu / (nu + XI_PRIOR)
    xi = min(max(xi, XI_MIN), XI_MAX)
    sigma = mean * (1.0 - xi)  # the GPD's mean excess is sigma / (1 - xi)
    ratio = risk * n / nu
    if abs(xi) < 1e-6:
        return float(level - sigma * math.log(ratio))
    return float(level + sigma / xi * (ratio ** (-xi) - 1.0))
