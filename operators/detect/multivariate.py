"""Multivariate model per device: how its signals move together, and when they stop doing so.

Attacks on physical processes keep every signal inside its own range; what breaks is a relationship
(a flow that no longer matches its pump and tank level) or a small persistent shift. Per device, from
the signal means of its clean closed windows (operators/twin/kernels.py writes them next to the
features), in three phases:

- learn: the first `fit_windows(learn_windows)` clean windows accumulate the mean and co-moments
  (Welford), then a PCA of the correlation matrix is fitted once (eigh): k components keep
  VARIANCE_KEPT of the variance, at most m - 1 so that a residual is left (m = signals that moved
  while learning; one that never moved is left to the per-signal baselines).
- calibrate: the rest of the learning period is scored by the fitted model, windows it has not seen,
  and each statistic's limit for the target false-alarm rate comes from these scores alone (no labels).
- live: every closed window is scored and the alarm raised and cleared with hysteresis.

Context: four more columns follow the signals, the sine and cosine of the window's time of day and
day of week. The model learns them like signals, so where a signal follows the clock the learned
relationship includes the hour: a morning peak fits it, the same peak at night breaks it (Q). A pair
stays in the model only where the learning period shows the period (found automatically): the fit
windows span at least CONTEXT_CYCLES cycles and some signal has at least CONTEXT_R2 of its variance
explained by the pair (its squared correlation with sine plus cosine; a linear trend over three
cycles reaches 0.07). Otherwise the pair is dropped like a constant signal.

Statistics (z = window means standardised by the learning period, t = P'z the k principal scores,
e = z - P t the residual, u_j = e_j over its learned spread sqrt(1 - sum_i lambda_i P_ji^2)):

- T2 = sum t_i^2 / lambda_i: variation inside the learned subspace, unusually large.
- Q = |e|^2 (squared prediction error): the learned relationships broken.
- drift = max_j |EWMA(u)_j| in units of the EWMA's noise: a small persistent shift or a slow ramp of
  one signal against the others, which no single window shows (EWMA chart, alpha = EWMA_ALPHA).
- var = max_j EWMA(u_j^2): one signal much noisier than the relationships allow (oscillation, jitter).

Limits without labels (calibrate), for the per-statistic risk q = fa_rate / 4, by one of three
methods (`detection.multivariate_limits`; tables: `--limits`), all on the cube root of each statistic,
which is close to normal whatever its degrees of freedom (Wilson-Hilferty: within 10 % of the exact
chi-square quantile even at 1 degree) and keeps the order of the values, so its quantiles are the
statistic's:

- quantile: the mean and spread of the calibration windows give the normal quantile, widened
  Student-style for short calibrations; exceedances of the 99 % level and their mean excess give an
  exponential-tail quantile, and the larger of the two is the limit.
- spot: peaks over threshold (SPOT, Siffer et al. KDD 2017; operators/detect/spot.py): a generalised
  Pareto tail fitted to the excesses over a high level of the calibration scores gives the quantile
  (the normal one while there are too few peaks), so the tail's own shape sets the limit.
- dspot: spot, and the T2 and Q limits keep learning from live windows judged normal (clean, no
  alarm, nor one at the next window) with a forgetting horizon (spot.horizon), so they follow a slow
  change of normal operation. The paper's DSPOT subtracts a local mean instead; here that would
  absorb the slow ramps the drift chart exists to catch, while a horizon of several calibrations
  cannot be moved by one incident. The EWMA charts keep their calibrated limits: neighbouring values
  share most of their data, so a tail refined from them while streaming counts one excursion many
  times (measured: several times the target rate on clean data).

The EWMA charts need EWMA_MIN_CAL calibration windows, else only T2 and Q judge. Values beyond
CLIP_SD (12) spreads of the cube roots are clipped while calibrating, so a few gross unlabelled
incidents in the learning data cannot inflate the limits. Not closer: a clip at 6 spreads cut off
the heavy tail that real machines show in normal operation (SMD machine-1-6: spot limits T2 227 /
Q 95 against the learning period's own 99.9 % points 825 / 400), the limits came out far too tight
and normal windows crossed them all day (43 alarms a day, point F1 0.35); at 12 the GPD sees that
tail (point F1 0.60) and BATADAL, NAB and TEP stay within their goals. Without any clip machine-1-6
reached 0.72 but found 8 of its 30 incidents instead of 16 (benchmarks/detection, ARCHITECTURE.md
section 12).

Alarm (hysteresis in time): raised when RAISE_AFTER windows in a row exceed a limit, or one exceeds it
STRONG times; held while windows stay above, cleared after CLEAR_AFTER windows in a row below. So one
window above a limit, which the calibration expects at the target rate, is a higher score but not an
alarm, and an incident whose windows dip under the limit now and then stays one alarm (clearing at
the first window under split SMD machine-1-6's incidents into 36 alarms a day, 3 with CLEAR_AFTER 5,
and cut TEP's slow faults into pieces: 10 of 18 faults at or above the PCA anchor, 13 with 5).
A device that receives an operator command starts learning again (its operating point changed on
purpose; the drift detector judges the command).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from numba import njit

from twinguard.operators.decode.telemetry import (
    MAX_SIGNAL_ABS,  # a mean beyond any decodable signal is missing
)
from twinguard.operators.detect import spot
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import (
    MV_ABOVE,
    MV_BELOW,
    MV_CEXC,
    MV_CEXC2,
    MV_CM2,
    MV_CMDS,
    MV_CMEAN,
    MV_CN,
    MV_CNU,
    MV_K,
    MV_LIMIT,
    MV_N,
    MV_ON,
    MV_PEND,
    MV_PHASE,
    MV_SD,
    MV_SEEN,
    MV_VS,
    MV_ZS,
    N_MV_CONTEXT,
    N_MV_STATS,
)
from twinguard.schemas.features import FEATURE_INDEX as FI

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

LEARN, CALIBRATE, LIVE = 0, 1, 2
STAT_NAMES = ("T2", "Q", "drift", "var")
S_T2, S_Q, S_DRIFT, S_VAR = range(N_MV_STATS)
MIN_LEARN = 30  # fewer learning windows than this: no model (per-signal baselines judge alone)
FIT_SHARE = 0.6  # of the learning windows fit the model; the rest calibrate its limits
MIN_CALIBRATE = 12  # a `train` that ends with fewer calibration windows leaves the device learning
VARIANCE_KEPT = 0.9
EWMA_ALPHA = 0.1
EWMA_NOISE = math.sqrt(EWMA_ALPHA / (2.0 - EWMA_ALPHA))  # sd of an EWMA of unit white noise
EWMA_CLIP = 4.0  # standardised values fed to the EWMAs are clipped here (Huber-style robustness)
RV_FLOOR = 0.1  # a residual's learned variance never below this share of its signal's (small
# eigenvalues are the worst estimated: dividing by them would make the noisiest residuals look largest)
CONSTANT = 1e-9  # a signal whose spread is below this share of its level never moved
TAIL_Z = 2.326  # the peaks-over-threshold level: the 99 % point of the calibration scores
CLIP_SD = 12.0  # calibration values beyond this many spreads are clipped (gross unlabelled incidents)
EXCESS_CAP_SD = 3.0
CAL_BURN = 20  # calibration windows before clipping and tail counting start
EWMA_MIN_CAL = 100  # calibration windows the EWMA charts need (10 time constants); fewer: T2, Q only
POT_MIN = 5  # exceedances needed before the tail estimate is believed
SD_FLOOR = 0.02  # of the mean cube root: a calibration that never varied still has a spread
RAISE_AFTER, CLEAR_AFTER, STRONG = 2, 5, 2.0
TOP = 3  # signals named in a threat
DAY_MS, WEEK_MS = 86_400_000, 604_800_000
CONTEXT_CYCLES = 3  # the learning period spans at least this many days (weeks) for time of day (week)
CONTEXT_R2 = 0.1  # share of some signal's variance the time of day (week) must explain
CONTEXT_NAMES = ("time of day", "time of day", "day of week", "day of week")

# columns of the per-window output (one row per closed window given to `judge`)
O_RATIO, O_ALARM, O_STAT, O_T2, O_Q, O_DRIFT, O_VAR, O_PHASE = range(8)
O_TOP = 8  # TOP signal indices (-1 = none), then their shares of the statistic, then their values
O_SHARE = O_TOP + TOP
O_VALUE = O_SHARE + TOP
N_OUT = O_VALUE + TOP


DEFAULT_LIMITS = "spot"


@dataclass(frozen=True)
class MultivariateConfig:
    """Learning length (windows per device), the target false-alarm rate per window and how the
    limits for it are found (spot.METHODS)."""

    learn_windows: int
    fa_rate: float
    limits: str = DEFAULT_LIMITS
    time_context: bool = False  # the context columns may join the model (kept where they matter)

    def __post_init__(self) -> None:
        if not 0.0 < self.fa_rate < 0.5:
            msg = f"detection.multivariate_fa_rate must be in (0, 0.5), got {self.fa_rate}"
            raise ValueError(msg)
        if self.limits not in spot.METHODS:
            msg = (f"detection.multivariate_limits must be one of {', '.join(spot.METHODS)}, "
                   f"got {self.limits!r}")
            raise ValueError(msg)

    @property
    def method(self) -> int:
        return spot.METHODS[self.limits]

    @property
    def calibration_windows(self) -> int:
        """Windows of the learning period that calibrate the limits."""
        return max(self.learn_windows - fit_windows(self.learn_windows), MIN_CALIBRATE)

    @property
    def enabled(self) -> bool:
        return self.learn_windows >= MIN_LEARN

    @property
    def risk(self) -> float:
        """Per statistic: the four share the rate."""
        return self.fa_rate / N_MV_STATS


def fit_windows(learn_windows: int) -> int:
    """Windows that fit the model; the rest of the learning period calibrates its limits."""
    return max(int(math.ceil(FIT_SHARE * learn_windows)), 2)


def clean_windows(features: F64) -> Mask:
    """Windows fit to learn from: no integrity or physics violation (the per-signal baselines use
    the same rule)."""
    bad = np.zeros(features.shape[0], dtype=bool)
    for name in ("hmac_fail_10s", "replays_10s", "fw_unknown_10s", "range_viol_frac",
                 "roc_viol_frac", "inv_viol_frac"):
        bad |= features[:, FI[name]] > 0
    return ~bad


def monotonic(roc_min: F64, roc_max: F64) -> Mask:
    """[types, signals]: signals declared never to fall (or never to rise), such as an energy
    register. Their level only says how long the device has run, never a relationship: they stay
    out of the model (the per-signal rate-of-change checks judge them)."""
    return np.asarray((roc_min >= 0.0) | (roc_max <= 0.0), dtype=bool)


def context(mid_ms: I64) -> F64:
    """[rows, N_MV_CONTEXT]: sine and cosine of the time of day and of the day of week (UTC) of
    each window's middle."""
    t = np.asarray(mid_ms, dtype=np.int64)
    day = 2.0 * np.pi * (t % DAY_MS) / DAY_MS
    week = 2.0 * np.pi * (t % WEEK_MS) / WEEK_MS
    return np.column_stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)])


def judge(arrays: dict[str, np.ndarray], istate: I64, nsig: I64, slots: I64, final: Mask,
          clean: Mask, means: F64, cfg: MultivariateConfig, left_out: Mask | None = None,
          mid_ms: I64 | None = None, window_ms: int = 0) -> F64:
    """Learn from / score the closed windows (rows in closing order) in place: [rows, N_OUT].
    left_out [types, signals]: signals the model ignores (`monotonic`); mid_ms: each window's
    middle (event time), for the context columns; window_ms: the window length."""
    out = np.zeros((slots.shape[0], N_OUT))
    out[:, O_TOP:O_SHARE] = -1.0
    if slots.shape[0] == 0 or not cfg.enabled:
        return out
    if left_out is not None and left_out.any():
        skip = left_out[istate[slots, K.I_TYPE]][:, : means.shape[1]]
        means = np.where(skip, np.nan, means[:, : skip.shape[1]])
    z_q = NormalDist().inv_cdf(1.0 - cfg.risk)
    # inf (or a mean beyond any decoded signal) counts as missing: the float32 co-moments would
    # turn it into inf and NaN for every later window of the device
    means = np.where(np.abs(means) <= MAX_SIGNAL_ABS, means, np.nan)
    n_cal = cfg.calibration_windows
    if not cfg.time_context:
        mid_ms = None
    clock = np.zeros((slots.shape[0], N_MV_CONTEXT)) if mid_ms is None else context(mid_ms)
    span = fit_windows(cfg.learn_windows) * window_ms if mid_ms is not None else 0
    cycles = np.array([span / DAY_MS, span / DAY_MS, span / WEEK_MS, span / WEEK_MS])
    step(slots, final, clean, np.ascontiguousarray(means), clock, cycles, istate, nsig,
         arrays["commands"],
         arrays["mv_i"], arrays["mv_mu"], arrays["mv_vec"], arrays["mv_mat"], arrays["mv_cal"],
         cfg.learn_windows, cfg.risk, z_q, cfg.method, spot.level_z(n_cal), spot.horizon(n_cal),
         out)
    return out


def finish_learning(arrays: dict[str, np.ndarray], size: int, cfg: MultivariateConfig) -> int:
    """End of a `train`: devices still calibrating get their limits from the windows they had
    (at least MIN_CALIBRATE); returns how many devices have a live model."""
    z_q = NormalDist().inv_cdf(1.0 - cfg.risk)
    tail_z = spot.level_z(cfg.calibration_windows)
    mv_i = arrays["mv_i"]
    for s in range(size):
        if mv_i[s, MV_PHASE] == CALIBRATE and mv_i[s, MV_N] >= MIN_CALIBRATE:
            _set_limits(s, mv_i, arrays["mv_cal"], cfg.risk, z_q, cfg.method, tail_z)
    return int(np.sum(mv_i[:size, MV_PHASE] == LIVE))


def score(out: F64) -> F64:
    """The [0, 1] anomaly score of each window: 0.5 at the limit, like the per-signal score."""
    r = out[:, O_RATIO]
    return r / (r + 1.0)


def explain(row: F64, names: Sequence[str]) -> str:
    """Which statistic crossed its limit by how much, and the signals that carried it."""
    stat = STAT_NAMES[int(row[O_STAT])]
    parts = [f"{STAT_NAMES[j]} {row[O_T2 + j]:.1f}x" for j in range(N_MV_STATS) if row[O_T2 + j] >= 1.0]
    what = {"T2": "moving together further than learned",
            "Q": "breaking the learned relationship between signals",
            "drift": "drifting against the others", "var": "noisier than the others allow"}[stat]
    signals = []
    for j in range(TOP):
        k = int(row[O_TOP + j])
        if k < 0 or row[O_SHARE + j] < 0.05:
            continue
        name = (names[k] if k < len(names) else CONTEXT_NAMES[k - len(names)]
                if k - len(names) < N_MV_CONTEXT else f"signal {k}")
        signals.append(f"{name} {100 * row[O_SHARE + j]:.0f}% ({row[O_VALUE + j]:+.1f} sd)")
    return (f"signals {what}: {', '.join(parts) or f'{stat} {row[O_RATIO]:.1f}x'} the device's "
            f"calibrated limit; carried by {', '.join(signals) or 'no single signal'}")


# ------------------------------------------------------------------------------------------ kernels


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def step(slots: I64, final: Mask, clean: Mask, means: F64, clock: F64, cycles: F64, istate: I64,
         nsig: I64, commands: I64,
         mv_i: I64, mv_mu: F64, mv_vec: F32, mv_mat: F32, mv_cal: F32, learn_windows: int,
         risk: float, z_q: float, method: int, tail_z: float, keep: float, out: F64) -> None:
    """Every final window in order: learn, calibrate or score its device (state in place; the
    verdicts of live devices into out[r]). clock: the context columns of each window; cycles: how
    many days (weeks) the fit windows span; method: spot.METHODS; tail_z: where peaks start (spreads
    of the cube root above its mean); keep: the DSPOT horizon in windows."""
    n_fit = max(int(math.ceil(FIT_SHARE * learn_windows)), 2)
    n_cal = max(learn_windows - n_fit, MIN_CALIBRATE)
    for r in range(slots.shape[0]):
        if not final[r]:
            continue
        s = slots[r]
        n_sig = nsig[istate[s, K.I_TYPE]]
        m = n_sig + N_MV_CONTEXT
        x = np.empty(m)
        x[:n_sig] = means[r, :n_sig]
        x[n_sig:] = clock[r]
        if mv_i[s, MV_SEEN] == 0:  # a device's first window is partial
            mv_i[s, MV_SEEN] = 1
            mv_i[s, MV_CMDS] = commands[s]
            continue
        if commands[s] != mv_i[s, MV_CMDS]:  # an operator moved its operating point: relearn
            _restart(s, mv_i, mv_mu, mv_vec, mv_mat, mv_cal)
            mv_i[s, MV_CMDS] = commands[s]
        phase = mv_i[s, MV_PHASE]
        if phase == LEARN:
            if clean[r]:
                _welford(s, x, mv_i, mv_mu, mv_mat)
                if mv_i[s, MV_N] >= n_fit:
                    _fit(s, m, n_sig, cycles, mv_i, mv_mu, mv_vec, mv_mat)
            continue
        stats = np.zeros(N_MV_STATS)
        contrib = np.zeros((N_MV_STATS, m))
        value = np.zeros((N_MV_STATS, m))
        _score(s, x, m, mv_i, mv_mu, mv_vec, mv_mat, mv_cal, stats, contrib, value)
        if phase == CALIBRATE:
            if clean[r]:
                if method == spot.QUANTILE:
                    _calibrate(s, stats, mv_i, mv_cal, TAIL_Z, EXCESS_CAP_SD)
                else:  # the GPD fit needs the excesses as they are (CLIP_SD still bounds them)
                    _calibrate(s, stats, mv_i, mv_cal, tail_z, CLIP_SD)
                if mv_i[s, MV_N] >= n_cal:
                    _set_limits(s, mv_i, mv_cal, risk, z_q, method, tail_z)
            continue
        _verdict(s, stats, contrib, value, mv_i, mv_cal, out[r])
        if method == spot.DSPOT:
            _follow(s, stats, clean[r] and mv_i[s, MV_ON] == 0, mv_cal, risk, z_q, tail_z, keep)


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _restart(s: int, mv_i: I64, mv_mu: F64, mv_vec: F32, mv_mat: F32, mv_cal: F32) -> None:
    mv_i[s, MV_PHASE], mv_i[s, MV_N], mv_i[s, MV_K] = LEARN, 0, 0
    mv_i[s, MV_ON], mv_i[s, MV_ABOVE], mv_i[s, MV_BELOW] = 0, 0, 0
    mv_mu[s, :] = 0.0
    mv_vec[s, :, :] = 0.0
    mv_mat[s, :, :] = 0.0
    mv_cal[s, :, :] = 0.0


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _welford(s: int, x: F64, mv_i: I64, mv_mu: F64, mv_mat: F32) -> None:
    """Fold one window's means into the running mean and co-moments (a missing signal counts as
    its running mean: it moves nothing)."""
    m = x.shape[0]
    n = mv_i[s, MV_N] + 1
    d = np.empty(m)
    for j in range(m):
        xj = x[j] if math.isfinite(x[j]) else mv_mu[s, j]
        d[j] = xj - mv_mu[s, j]
        mv_mu[s, j] += d[j] / n
    for i in range(m):
        xi = x[i] if math.isfinite(x[i]) else mv_mu[s, i]
        after = xi - mv_mu[s, i]
        for j in range(m):
            mv_mat[s, i, j] += d[j] * after
    mv_i[s, MV_N] = n


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _fit(s: int, m: int, n_sig: int, cycles: F64, mv_i: I64, mv_mu: F64, mv_vec: F32,
         mv_mat: F32) -> None:
    """PCA of the learned correlation matrix; loadings and eigenvalues replace the co-moments.
    Columns n_sig.. are the context pairs, kept only where they explain a signal (module doc)."""
    n = mv_i[s, MV_N]
    w = mv_mat.shape[1]
    sd = np.zeros(m)
    for j in range(m):
        sd[j] = math.sqrt(max(mv_mat[s, j, j] / max(n - 1, 1), 0.0))
    keep = np.ones(m, dtype=np.bool_)
    for p in range(n_sig, m, 2):
        best = 0.0
        if cycles[p - n_sig] >= CONTEXT_CYCLES and sd[p] > 0.0 and sd[p + 1] > 0.0:
            for j in range(n_sig):
                if sd[j] > CONSTANT * (1.0 + abs(mv_mu[s, j])):
                    r2 = 0.0
                    for c in (p, p + 1):
                        r = mv_mat[s, j, c] / max(n - 1, 1) / (sd[j] * sd[c])
                        r2 += r * r
                    best = max(best, r2)
        keep[p] = keep[p + 1] = best >= CONTEXT_R2
    active = np.zeros(m, dtype=np.int64)
    na = 0
    for j in range(m):
        if keep[j] and sd[j] > CONSTANT * (1.0 + abs(mv_mu[s, j])):
            active[na] = j
            na += 1
    k = 0
    load = np.zeros((na, na))
    lam = np.zeros(na)
    if na >= 2:
        corr = np.empty((na, na))
        for a in range(na):
            for b in range(na):
                i, j = active[a], active[b]
                corr[a, b] = mv_mat[s, i, j] / max(n - 1, 1) / (sd[i] * sd[j])
            corr[a, a] = 1.0
        vals, vecs = np.linalg.eigh(corr)
        total = 0.0
        for a in range(na):
            lam[a] = max(vals[na - 1 - a], 0.0)  # descending
            load[:, a] = vecs[:, na - 1 - a]
            total += lam[a]
        kept = 0.0
        while k < na - 1 and lam[k] > 1e-9 * total and kept < VARIANCE_KEPT * total:
            kept += lam[k]
            k += 1
    mv_mat[s, :, :] = 0.0
    mv_vec[s, :, :] = 0.0
    for a in range(na):
        j = active[a]
        mv_vec[s, MV_SD, j] = sd[j]
        mv_vec[s, MV_VS, j] = 1.0
        for c in range(k):
            mv_mat[s, j, c] = load[a, c]
    for c in range(k):
        mv_mat[s, c, w - 1] = lam[c]
    mv_i[s, MV_K] = k
    mv_i[s, MV_PHASE] = CALIBRATE
    mv_i[s, MV_N] = 0


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _score(s: int, x: F64, m: int, mv_i: I64, mv_mu: F64, mv_vec: F32, mv_mat: F32,
           mv_cal: F32, stats: F64, contrib: F64, value: F64) -> None:
    """The four statistics of one window and each signal's part in them. The EWMAs are for what
    single windows do not show: their inputs are clipped at EWMA_CLIP sds, and a window T2 or Q
    puts STRONG times over its limit (judged already) does not feed them, so a short large incident
    does not keep the drift and variance charts in alarm long after it ended."""
    k = mv_i[s, MV_K]
    w = mv_mat.shape[1]
    z = np.zeros(m)
    for j in range(m):
        sd = mv_vec[s, MV_SD, j]
        if sd > 0.0 and math.isfinite(x[j]):
            z[j] = (x[j] - mv_mu[s, j]) / sd
    t = np.zeros(k)
    for c in range(k):
        for j in range(m):
            t[c] += mv_mat[s, j, c] * z[j]
    u = np.zeros(m)
    spread = np.ones(m)
    for j in range(m):
        if mv_vec[s, MV_SD, j] <= 0.0:
            continue
        fit, explained, t2_part = 0.0, 0.0, 0.0
        for c in range(k):
            p = mv_mat[s, j, c]
            lam = max(mv_mat[s, c, w - 1], 1e-12)
            fit += p * t[c]
            explained += lam * p * p
            t2_part += p * t[c] / lam
        # what the kept components leave of the (unit) variance of z_j: sum over the rest of lam p^2
        spread[j] = math.sqrt(max(1.0 - explained, RV_FLOOR))
        e = z[j] - fit
        u[j] = e / spread[j]
        stats[S_Q] += e * e
        contrib[S_T2, j], value[S_T2, j] = max(z[j] * t2_part, 0.0), z[j]
        contrib[S_Q, j], value[S_Q, j] = e * e, u[j]
    for c in range(k):
        stats[S_T2] += t[c] * t[c] / max(mv_mat[s, c, w - 1], 1e-12)
    judged = (mv_i[s, MV_PHASE] == LIVE and (
        stats[S_T2] >= STRONG * mv_cal[s, S_T2, MV_LIMIT] or stats[S_Q] >= STRONG * mv_cal[s, S_Q, MV_LIMIT]))
    for j in range(m):
        if mv_vec[s, MV_SD, j] > 0.0 and not judged:
            zc = min(max(z[j], -EWMA_CLIP), EWMA_CLIP)
            uc = min(u[j] * u[j], EWMA_CLIP * EWMA_CLIP)
            mv_vec[s, MV_ZS, j] += EWMA_ALPHA * (zc - mv_vec[s, MV_ZS, j])
            mv_vec[s, MV_VS, j] += EWMA_ALPHA * (uc - mv_vec[s, MV_VS, j])
    ts = np.zeros(k)
    for c in range(k):
        for j in range(m):
            ts[c] += mv_mat[s, j, c] * mv_vec[s, MV_ZS, j]
    for j in range(m):
        if mv_vec[s, MV_SD, j] <= 0.0:
            continue
        fit_s = 0.0
        for c in range(k):
            fit_s += mv_mat[s, j, c] * ts[c]
        drift = (mv_vec[s, MV_ZS, j] - fit_s) / spread[j] / EWMA_NOISE
        vs = float(mv_vec[s, MV_VS, j])
        stats[S_DRIFT] = max(stats[S_DRIFT], abs(drift))
        stats[S_VAR] = max(stats[S_VAR], vs)
        contrib[S_DRIFT, j], value[S_DRIFT, j] = abs(drift), drift
        contrib[S_VAR, j], value[S_VAR, j] = vs, math.sqrt(vs)


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _calibrate(s: int, stats: F64, mv_i: I64, mv_cal: F32, tail_z: float, cap_sd: float) -> None:
    """Fold one calibration window's statistics into the moments of their cube roots, clipped,
    and count the exceedances of the tail level tail_z (peaks over threshold; each excess at most
    cap_sd spreads)."""
    n = mv_i[s, MV_N]
    for j in range(N_MV_STATS):
        _fold(mv_cal[s, j], max(stats[j], 0.0) ** (1.0 / 3.0), n, tail_z, cap_sd)
    mv_i[s, MV_N] = n + 1


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _fold(cal: F32, c: float, n: int, tail_z: float, cap_sd: float) -> None:
    """One cube-rooted value into a statistic's moments (n values so far) and peaks."""
    mean = float(cal[MV_CMEAN])
    if n >= CAL_BURN:
        sd = math.sqrt(float(cal[MV_CM2]) / (n - 1))
        c = min(c, mean + CLIP_SD * sd)
        level = mean + tail_z * sd
        if c > level:
            excess = min(c - level, cap_sd * sd)
            cal[MV_CNU] += 1.0
            cal[MV_CEXC] += excess
            cal[MV_CEXC2] += excess * excess
    d = c - mean
    mean += d / (n + 1)
    cal[MV_CMEAN] = mean
    cal[MV_CM2] += d * (c - mean)
    cal[MV_CN] = n + 1


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def limit(n: int, mean: float, m2: float, nu: float, excess: float, risk: float,
          z_q: float, n_eff: float) -> float:
    """A statistic's limit from its calibration: the larger of the normal quantile of its cube
    root (widened Student-style for n_eff independent values: fewer than n for an EWMA, whose
    neighbouring windows share most of their data) and an exponential tail fitted to the
    exceedances of the 99 % level; cubed back."""
    sd = math.sqrt(m2 / max(n - 1, 1))
    sd = max(sd, SD_FLOOR * mean)
    z = z_q * (1.0 + (z_q * z_q + 1.0) / (4.0 * max(n_eff - 1.0, 1.0)))
    top = mean + z * sd
    tail = n - CAL_BURN
    if nu >= POT_MIN and tail > 0 and nu / tail > risk:
        level = mean + TAIL_Z * sd
        top = max(top, level + excess / nu * math.log(nu / tail / risk))
    return max(top, 0.0) ** 3


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def tail_limit(n: int, mean: float, m2: float, nu: float, s1: float, s2: float, risk: float,
               z_q: float, n_eff: float, tail_z: float) -> float:
    """A statistic's limit by peaks over threshold: the GPD quantile of its cube root fitted to
    the nu excesses over mean + tail_z spreads (sum s1, squares s2), cubed back; with too few
    peaks, the quantile method's limit."""
    sd = max(math.sqrt(m2 / max(n - 1, 1)), SD_FLOOR * mean)
    top = spot.gpd_quantile(mean + tail_z * sd, float(n - CAL_BURN), nu, s1, s2, risk)
    if math.isnan(top):
        return float(limit(n, mean, m2, 0.0, 0.0, risk, z_q, n_eff))
    return float(max(top, 0.0) ** 3)


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _stat_limit(cal: F32, j: int, risk: float, z_q: float, method: int, tail_z: float) -> float:
    n = int(cal[MV_CN])
    n_eff = n * EWMA_ALPHA / (2.0 - EWMA_ALPHA) if j >= S_DRIFT else float(n)
    if method == spot.QUANTILE:
        return float(limit(n, float(cal[MV_CMEAN]), float(cal[MV_CM2]), float(cal[MV_CNU]),
                           float(cal[MV_CEXC]), risk, z_q, n_eff))
    return float(tail_limit(n, float(cal[MV_CMEAN]), float(cal[MV_CM2]), float(cal[MV_CNU]),
                            float(cal[MV_CEXC]), float(cal[MV_CEXC2]), risk, z_q, n_eff, tail_z))


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _set_limits(s: int, mv_i: I64, mv_cal: F32, risk: float, z_q: float, method: int,
                tail_z: float) -> None:
    n = mv_i[s, MV_N]
    for j in range(N_MV_STATS):
        cal = mv_cal[s, j]
        cal[MV_CN] = n
        cal[MV_PEND] = -1.0
        cal[MV_LIMIT] = _stat_limit(cal, j, risk, z_q, method, tail_z)
        if j >= S_DRIFT and n < EWMA_MIN_CAL:  # too short to know an EWMA's spread: no limit
            cal[MV_LIMIT] = 0.0
    mv_i[s, MV_PHASE] = LIVE
    mv_i[s, MV_N] = 0


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _follow(s: int, stats: F64, normal: bool, mv_cal: F32, risk: float, z_q: float,
            tail_z: float, keep: float) -> None:
    """DSPOT: a live window judged normal (clean, no alarm after it) refines each limit once the
    next window is judged normal too, so the first window of an incident, which hysteresis does not
    yet call an alarm, never feeds them. A value over its limit counts as the limit (censored:
    leaving it out would thin the tail, lower the limit, leave out more, a spiral down; taking it
    whole would let a stealthy incident lift the limit). Past `keep` values the old ones fade
    (weights scaled by (keep - 1) / keep), so the limits follow a slow change of normal operation
    but no short stretch of data can move them far."""
    for j in range(S_DRIFT):  # T2 and Q only: see the module's docstring
        cal = mv_cal[s, j]
        pending = float(cal[MV_PEND])
        cal[MV_PEND] = max(stats[j], 0.0) if normal else -1.0
        if not normal or pending < 0.0 or cal[MV_LIMIT] <= 0.0:
            continue
        n = int(cal[MV_CN])
        if n >= keep:
            fade = (keep - 1.0) / keep
            cal[MV_CM2] *= fade
            cal[MV_CNU] *= fade
            cal[MV_CEXC] *= fade
            cal[MV_CEXC2] *= fade
            n = int(keep) - 1
        _fold(cal, min(pending, float(cal[MV_LIMIT])) ** (1.0 / 3.0), n, tail_z, CLIP_SD)
        cal[MV_LIMIT] = _stat_limit(cal, j, risk, z_q, spot.DSPOT, tail_z)


@njit(nogil=True, cache=True)  # type: ignore[misc,untyped-decorator]
def _verdict(s: int, stats: F64, contrib: F64, value: F64, mv_i: I64, mv_cal: F32,
             o: F64) -> None:
    """Ratios to the limits, the alarm with hysteresis, and the signals behind the worst ratio."""
    worst, best = 0, 0.0
    for j in range(N_MV_STATS):
        lim = mv_cal[s, j, MV_LIMIT]
        ratio = stats[j] / lim if lim > 0.0 else 0.0  # 0: no limit (nothing learned, or too short)
        o[O_T2 + j] = ratio
        if ratio > best:
            worst, best = j, ratio
    above = best >= 1.0
    mv_i[s, MV_ABOVE] = mv_i[s, MV_ABOVE] + 1 if above else 0
    mv_i[s, MV_BELOW] = 0 if above else mv_i[s, MV_BELOW] + 1
    if mv_i[s, MV_ON] == 1:
        if mv_i[s, MV_BELOW] >= CLEAR_AFTER:
            mv_i[s, MV_ON] = 0
    elif mv_i[s, MV_ABOVE] >= RAISE_AFTER or best >= STRONG:
        mv_i[s, MV_ON] = 1
    o[O_RATIO], o[O_ALARM], o[O_STAT], o[O_PHASE] = best, mv_i[s, MV_ON], worst, LIVE
    part = contrib[worst]
    total = part.sum()
    taken = np.zeros(part.shape[0], dtype=np.bool_)
    for i in range(min(TOP, part.shape[0])):
        j = -1
        for c in range(part.shape[0]):
            if not taken[c] and (j < 0 or part[c] > part[j]):
                j = c
        taken[j] = True
        o[O_TOP + i] = j
        o[O_SHARE + i] = part[j] / total if total > 0.0 else 0.0
        o[O_VALUE + i] = value[worst, j]
