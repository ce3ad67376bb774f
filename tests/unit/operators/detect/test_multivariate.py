"""The multivariate model: learning, calibrated limits, the statistics against a NumPy reference,
hysteresis, and what it names (operators/detect/multivariate.py)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from twinguard.operators.detect import multivariate as MV
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import (
    MV_CMEAN,
    MV_LIMIT,
    MV_N,
    MV_PHASE,
    MV_SD,
    multivariate_arrays,
)

WIDTH = 4


class Device:
    """One device's model arrays, fed window means one batch at a time."""

    def __init__(self, n_signals: int, learn: int, fa_rate: float = 0.01,
                 limits: str = MV.DEFAULT_LIMITS, time_context: bool = False) -> None:
        self.arrays = multivariate_arrays(1, WIDTH)
        self.arrays["commands"] = np.zeros(1, dtype=np.int64)
        self.istate = np.zeros((1, K.N_ISTATE), dtype=np.int64)
        self.nsig = np.array([n_signals], dtype=np.int64)
        self.cfg = MV.MultivariateConfig(learn, fa_rate, limits, time_context)

    def feed(self, x: np.ndarray, clean: bool = True, left_out: np.ndarray | None = None
             ) -> np.ndarray:
        n = x.shape[0]
        means = np.full((n, WIDTH), np.nan)
        means[:, : x.shape[1]] = x
        return MV.judge(self.arrays, self.istate, self.nsig, np.zeros(n, dtype=np.int64),
                        np.ones(n, dtype=bool), np.full(n, clean), means, self.cfg, left_out)

    @property
    def phase(self) -> int:
        return int(self.arrays["mv_i"][0, MV_PHASE])


def correlated(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three signals: a wide common factor plus small independent noise each."""
    f = rng.normal(0.0, 5.0, n)
    return np.column_stack([100 + f + rng.normal(0, 0.3, n), 50 + 2 * f + rng.normal(0, 0.3, n),
                            20 - f + rng.normal(0, 0.3, n)])


def learned(rng: np.random.Generator, learn: int = 600, fa_rate: float = 0.01,
            limits: str = MV.DEFAULT_LIMITS) -> Device:
    dev = Device(3, learn, fa_rate, limits)
    dev.feed(correlated(rng, learn + 1))  # the first window is partial and skipped
    assert dev.phase == MV.LIVE
    return dev


@pytest.mark.parametrize(("dof", "exact"), [(1, 10.828), (5, 20.515), (30, 59.703)])
def test_limit_matches_the_chi_square_quantile(dof: int, exact: float) -> None:
    """Wilson-Hilferty: the cube root's normal quantile is within 10 % of the exact 0.999 point."""
    rng = np.random.default_rng(dof)
    c = rng.chisquare(dof, 200_000) ** (1 / 3)
    z = NormalDist().inv_cdf(0.999)
    got = MV.limit(c.size, float(c.mean()), float(((c - c.mean()) ** 2).sum()), 0.0, 0.0, 1e-3, z,
                   float(c.size))
    assert got == pytest.approx(exact, rel=0.1)


def test_heavy_tail_raises_the_limit_above_the_normal_one() -> None:
    """Peaks over threshold: many exceedances of the 99 % level with a large mean excess (a
    heavier tail than normal) give a higher limit than the moments alone."""
    z = NormalDist().inv_cdf(1 - 1e-3)
    normal = MV.limit(1000, 2.0, 0.25 * 999, 0.0, 0.0, 1e-3, z, 1000.0)
    heavy = MV.limit(1000, 2.0, 0.25 * 999, 40.0, 40.0 * 1.0, 1e-3, z, 1000.0)
    assert heavy > normal


def test_a_heavy_tailed_normal_operation_keeps_its_false_alarm_rate() -> None:
    """Normal operation with heavy-tailed noise (Student t, 2 degrees of freedom, like the bursts of
    a server's metrics): the calibration must see that tail, not clip it as incidents, so fresh
    windows of the same operation stay within twice the target rate (with a clip at 6 spreads
    0.0058 of them crossed each of the T2 / Q limits here, with 12 spreads 0.0039)."""
    rng = np.random.default_rng(21)

    def heavy(n: int) -> np.ndarray:
        f = rng.standard_t(2, n)
        return np.column_stack([100 + f + 0.3 * rng.standard_t(2, n),
                                50 + 2 * f + 0.3 * rng.standard_t(2, n),
                                20 - f + 0.3 * rng.standard_t(2, n)])

    dev = Device(3, 4000, fa_rate=0.01)
    dev.feed(heavy(4001))
    assert dev.phase == MV.LIVE
    out = dev.feed(heavy(40_000))
    over = out[:, MV.O_T2:MV.O_T2 + 2] >= 1.0  # risk 0.0025 each
    assert (over.mean(axis=0) < 2 * dev.cfg.risk).all()


def test_statistics_match_a_numpy_pca() -> None:
    """T2 and Q of live windows equal a NumPy reference fitted on the same learning windows
    (spot: limits fixed after calibration, so ratio x limit is the statistic)."""
    rng = np.random.default_rng(1)
    learn = 600
    x = correlated(rng, learn + 1)
    dev = Device(3, learn, limits="spot")
    dev.feed(x)
    fit = x[1:1 + MV.fit_windows(learn)]
    mu, sd = fit.mean(axis=0), fit.std(axis=0, ddof=1)
    lam, vec = np.linalg.eigh(np.corrcoef(fit.T))
    lam, vec = lam[::-1], vec[:, ::-1]
    k = int(np.searchsorted(np.cumsum(lam) / lam.sum(), MV.VARIANCE_KEPT) + 1)
    test = correlated(rng, 50)
    out = dev.feed(test)
    z = (test - mu) / sd
    t = z @ vec[:, :k]
    t2 = (t ** 2 / lam[:k]).sum(axis=1)
    q = ((z - t @ vec[:, :k].T) ** 2).sum(axis=1)
    limits = dev.arrays["mv_cal"][0, :, MV_LIMIT]
    np.testing.assert_allclose(out[:, MV.O_T2] * limits[MV.S_T2], t2, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out[:, MV.O_Q] * limits[MV.S_Q], q, rtol=1e-3, atol=1e-4)


def test_broken_relationship_is_an_alarm_no_single_signal_shows() -> None:
    """Each signal stays well inside its learned range; the second stops following the factor."""
    rng = np.random.default_rng(2)
    dev = learned(rng)
    x = correlated(rng, 6)
    x[:, 1] = 50 - 2 * (x[:, 0] - 100)  # the second signal now moves against the first
    x[:, 0] = 100 + np.array([3, -3, 4, -4, 3, -3])  # within one sd of the factor
    out = dev.feed(x)
    assert out[:, MV.O_ALARM].max() == 1
    worst = int(np.argmax(out[:, MV.O_RATIO]))
    assert MV.STAT_NAMES[int(out[worst, MV.O_STAT])] in ("Q", "T2")
    assert int(out[worst, MV.O_TOP]) in (0, 1, 2)
    text = MV.explain(out[worst], ["flow", "level", "pressure"])
    assert "calibrated limit" in text and any(n in text for n in ("flow", "level", "pressure"))


def test_slow_ramp_is_caught_by_the_drift_chart_before_it_is_large() -> None:
    """A ramp of 0.04 noise sds per window on one signal's relation: the EWMA chart raises the
    alarm while that signal's own deviation is still under 3 of its noise sds."""
    rng = np.random.default_rng(3)
    dev = learned(rng)
    n = 200
    x = correlated(rng, n)
    ramp = 0.3 * 0.04 * np.arange(n)
    x[:, 2] += ramp
    out = dev.feed(x)
    first = int(np.argmax(out[:, MV.O_ALARM] > 0))
    assert out[first, MV.O_ALARM] == 1
    assert ramp[first] < 3 * 0.3


@pytest.mark.parametrize("limits", ["quantile", "spot", "dspot"])
def test_clean_windows_stay_near_the_target_rate(limits: str) -> None:
    rng = np.random.default_rng(4)
    dev = learned(rng, learn=1000, fa_rate=0.01, limits=limits)
    out = dev.feed(correlated(rng, 20_000))
    over = out[:, MV.O_T2:MV.O_T2 + 2] >= 1.0  # T2 and Q judge single windows: risk 0.0025 each
    assert (over.mean(axis=0) < 0.005).all()
    assert (out[:, MV.O_RATIO] >= 1.0).mean() < 0.02  # any statistic: about the rate 0.01
    assert out[:, MV.O_ALARM].mean() < 0.01  # alarms need two in a row


def test_one_window_over_the_limit_is_no_alarm_two_are() -> None:
    rng = np.random.default_rng(5)
    # fixed limits, as the probe below must see what the feed sees; quantile: the EWMA charts' limits
    # leave room for the two windows over (spot's are tighter, and would carry them one window on)
    dev = learned(rng, limits="quantile")
    row = correlated(rng, 1)[0]

    def over(d: float) -> np.ndarray:
        x = row.copy()
        x[1] += d  # the second signal off the common factor
        return x

    saved = {k: v.copy() for k, v in dev.arrays.items()}

    def probe(d: float) -> float:  # the ratio one such window would get, state left as it was
        ratio = float(dev.feed(over(d)[None])[0, MV.O_RATIO])
        dev.arrays = {k: v.copy() for k, v in saved.items()}
        return ratio

    d = next(d for d in np.linspace(0.1, 5.0, 50) if 1.2 <= probe(d) < 1.8)  # under STRONG x
    out = dev.feed(np.array([row, over(d), row]))
    assert out[1, MV.O_RATIO] >= 1.0 and out[:, MV.O_ALARM].tolist() == [0, 0, 0]
    quiet = MV.CLEAR_AFTER
    out = dev.feed(np.array([over(d), over(d)] + [row] * quiet))
    assert (out[:2, MV.O_RATIO] >= 1.0).all() and (out[2:, MV.O_RATIO] < 1.0).all()
    # raised on the second, held through CLEAR_AFTER - 1 quiet windows, cleared at the last
    assert out[:, MV.O_ALARM].tolist() == [0, 1] + [1] * (quiet - 1) + [0]


def test_an_incident_that_dips_under_the_limit_stays_one_alarm() -> None:
    """Windows of one incident that fall under the limit for fewer than CLEAR_AFTER windows in a
    row do not clear the alarm (one incident, one alarm); a quiet stretch that long does."""
    rng = np.random.default_rng(5)
    dev = learned(rng, limits="quantile")
    row = correlated(rng, 1)[0]
    hit = row.copy()
    hit[1] += 20.0  # far off the common factor: over the limit at once
    dips = [hit, hit] + [row] * (MV.CLEAR_AFTER - 1) + [hit] + [row] * MV.CLEAR_AFTER
    out = dev.feed(np.array(dips))
    alarm = out[:, MV.O_ALARM].astype(int).tolist()
    assert alarm[0] == 1 and alarm[-1] == 0
    assert sum(1 for a, b in zip([0, *alarm], alarm, strict=False) if b and not a) == 1


def test_constant_and_missing_signals_are_left_out() -> None:
    """A signal that never moved is not in the model (no division by ~0); a missing reading
    moves nothing; nothing turns NaN."""
    rng = np.random.default_rng(6)
    dev = Device(4, 300)
    x = np.column_stack([correlated(rng, 301), np.full(301, 7.0)])
    x[50, 0] = np.nan
    dev.feed(x)
    assert dev.arrays["mv_vec"][0, MV_SD, 3] == 0.0
    y = np.column_stack([correlated(rng, 5), np.array([7.0, 9.0, np.nan, 7.0, 7.0])])
    out = dev.feed(y)
    assert np.isfinite(out).all()


def test_a_register_that_only_grows_stays_out_of_the_model() -> None:
    """An energy register (declared never to fall) leaves its learned range as time passes; that
    is no broken relationship, so it is not in the model at all."""
    rng = np.random.default_rng(11)
    roc_min = np.array([[-1.0, -1.0, -1.0, 0.0]])
    roc_max = np.array([[1.0, 1.0, 1.0, 0.01]])
    left_out = MV.monotonic(roc_min, roc_max)
    assert left_out.tolist() == [[False, False, False, True]]
    dev = Device(4, 600)
    n = 601
    dev.feed(np.column_stack([correlated(rng, n), np.arange(n) * 0.5]), left_out=left_out)
    assert dev.arrays["mv_vec"][0, MV_SD, 3] == 0.0
    later = np.column_stack([correlated(rng, 50), 1e4 + np.arange(50) * 0.5])
    assert dev.feed(later, left_out=left_out)[:, MV.O_ALARM].sum() == 0


def test_short_learning_period_means_no_model() -> None:
    rng = np.random.default_rng(7)
    dev = Device(3, MV.MIN_LEARN - 1)
    out = dev.feed(correlated(rng, 400))
    assert dev.phase == MV.LEARN
    assert (out[:, : MV.O_TOP] == 0).all()


def test_unclean_windows_do_not_teach_it() -> None:
    rng = np.random.default_rng(8)
    dev = Device(3, 100)
    dev.feed(correlated(rng, 50), clean=False)
    assert int(dev.arrays["mv_i"][0, MV_N]) == 0  # windows learned: none


def test_a_command_restarts_learning() -> None:
    rng = np.random.default_rng(9)
    dev = learned(rng)
    dev.arrays["commands"][0] += 1
    dev.feed(correlated(rng, 3))
    assert dev.phase == MV.LEARN


def test_finish_learning_calibrates_what_it_has() -> None:
    """`train` ends with a device part-way through calibration: limits from the windows it had."""
    rng = np.random.default_rng(10)
    dev = Device(3, 1000)
    dev.feed(correlated(rng, MV.fit_windows(1000) + 1 + MV.MIN_CALIBRATE))
    assert dev.phase == MV.CALIBRATE
    assert MV.finish_learning(dev.arrays, 1, dev.cfg) == 1
    cal = dev.arrays["mv_cal"][0]
    assert (cal[: MV.S_DRIFT, MV_LIMIT] > cal[: MV.S_DRIFT, MV_CMEAN] ** 3).all()
    assert (cal[MV.S_DRIFT:, MV_LIMIT] == 0).all()  # too short for the EWMA charts: no limit


def test_rate_outside_its_range_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="multivariate_fa_rate"):
        MV.MultivariateConfig(360, 0.0)


def test_score_is_half_at_the_limit() -> None:
    out = np.zeros((2, MV.N_OUT))
    out[:, MV.O_RATIO] = [1.0, 3.0]
    assert MV.score(out).tolist() == [0.5, 0.75]
    assert math.isclose(MV.EWMA_NOISE, math.sqrt(0.1 / 1.9))


def test_infinite_or_huge_means_count_as_missing_and_leave_the_model_finite() -> None:
    """An inf mean would have turned the float32 co-moments into inf/NaN for good (issue 18, item 1)."""
    rng = np.random.default_rng(5)
    dev = Device(3, 100)
    x = correlated(rng, 101)
    x[10, 0], x[20, 1], x[30, 2] = np.inf, -1e300, 1e40
    dev.feed(x)
    assert dev.phase == MV.LIVE
    for name in ("mv_mu", "mv_vec", "mv_mat", "mv_cal"):
        assert np.isfinite(dev.arrays[name]).all(), name
    out = dev.feed(np.array([[np.inf, 50.0, 20.0], [100.0, 50.0, 20.0]]))
    assert np.isfinite(out).all()


def test_unknown_limit_method_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="multivariate_limits"):
        MV.MultivariateConfig(360, 0.01, "gaussian")


def test_dspot_follows_a_change_of_normal_operation() -> None:
    """The signals' own noise grows to 1.5x its learned size (ageing sensors) and stays: limits
    fixed at calibration stay where they were; dspot's Q limit, refined by the windows it judges
    normal, grows with it (Q ~ noise squared)."""
    q_limit = {}
    for limits in ("spot", "dspot"):
        rng = np.random.default_rng(11)
        dev = learned(rng, learn=1000, fa_rate=0.01, limits=limits)
        before = float(dev.arrays["mv_cal"][0, MV.S_Q, MV_LIMIT])
        n = 6_000
        x = correlated(rng, n) + rng.normal(0.0, 0.3 * math.sqrt(1.5 ** 2 - 1.0), (n, 3))
        dev.feed(x)
        q_limit[limits] = float(dev.arrays["mv_cal"][0, MV.S_Q, MV_LIMIT]) / before
    assert q_limit["spot"] == 1.0
    assert q_limit["dspot"] > 1.5


def test_dspot_limits_are_not_lifted_by_an_incident() -> None:
    """Windows of an alarm never feed the limits, and one over a limit counts as the limit."""
    rng = np.random.default_rng(12)
    dev = learned(rng, limits="dspot")
    before = dev.arrays["mv_cal"][0, :, MV_LIMIT].copy()
    x = correlated(rng, 200)
    x[:, 1] += 3.0  # the second signal leaves the common factor for 200 windows
    assert dev.feed(x)[:, MV.O_ALARM].mean() > 0.9
    after = dev.arrays["mv_cal"][0, :, MV_LIMIT]
    assert (after[: MV.S_DRIFT] <= before[: MV.S_DRIFT] * 1.01).all()


HOUR_MS = 3_600_000


def daily(rng: np.random.Generator, hours: np.ndarray, cycle: float = 4.0) -> np.ndarray:
    """One signal that peaks every day at 06:00 UTC and is lowest at 18:00, plus noise."""
    return (10.0 + cycle * np.sin(2 * np.pi * (hours % 24) / 24) + rng.normal(0, 0.3, hours.size))[:, None]


def feed_at(dev: Device, x: np.ndarray, hours: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    means = np.full((n, WIDTH), np.nan)
    means[:, : x.shape[1]] = x
    mid = (hours * HOUR_MS + HOUR_MS // 2).astype(np.int64)
    return MV.judge(dev.arrays, dev.istate, dev.nsig, np.zeros(n, dtype=np.int64),
                    np.ones(n, dtype=bool), np.ones(n, dtype=bool), means, dev.cfg, None, mid, HOUR_MS)


def test_time_of_day_makes_a_night_peak_an_alarm_and_the_morning_peak_normal() -> None:
    """28 days of hourly windows teach the daily cycle; the morning level at 18:00 breaks it."""
    rng = np.random.default_rng(13)
    learn = 24 * 28
    dev = Device(1, learn, fa_rate=0.001, limits="spot", time_context=True)
    hours = np.arange(learn + 1, dtype=np.int64)
    feed_at(dev, daily(rng, hours), hours)
    assert dev.phase == MV.LIVE
    day = learn + 1 + np.arange(24 * 7, dtype=np.int64)
    assert feed_at(dev, daily(rng, day), day)[:, MV.O_ALARM].sum() == 0  # a normal week
    at = np.array([day[-1] + 1 + (6 - (day[-1] + 1) % 24) % 24], dtype=np.int64)  # next 06:00
    morning = feed_at(dev, np.array([[14.0]]), at)
    night = feed_at(dev, np.array([[14.0], [14.0]]), at + 12 + np.arange(2))  # 18:00, 19:00
    assert morning[0, MV.O_RATIO] < 1.0
    assert night[-1, MV.O_ALARM] == 1
    assert "time of day" in MV.explain(night[-1], ["level"])


def test_time_of_day_stays_out_where_the_signals_do_not_follow_it() -> None:
    rng = np.random.default_rng(14)
    learn = 24 * 28
    dev = Device(1, learn, limits="spot", time_context=True)
    hours = np.arange(learn + 1, dtype=np.int64)
    feed_at(dev, daily(rng, hours, cycle=0.0), hours)
    assert (dev.arrays["mv_vec"][0, MV_SD, 1:1 + 4] == 0).all()  # context columns: not in the model
