"""Peaks-over-threshold limits (operators/detect/spot.py): the GPD quantile against known tails,
and where the level is put."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinguard.operators.detect import spot


def fit(excesses: np.ndarray, share: float, risk: float) -> float:
    """The quantile for `risk` from peaks over level 0 that are `share` of all values."""
    nu = float(excesses.size)
    return float(spot.gpd_quantile(0.0, nu / share, nu, float(excesses.sum()),
                                   float((excesses ** 2).sum()), risk))


def test_exponential_tail_gives_its_exact_quantile() -> None:
    """Excesses Exp(2) over a level passed by 10 % of values: P(X > z) = 0.1 exp(-z / 2)."""
    rng = np.random.default_rng(1)
    got = fit(rng.exponential(2.0, 100_000), 0.1, 1e-4)
    assert got == pytest.approx(2.0 * math.log(0.1 / 1e-4), rel=0.03)


def test_heavier_tail_gives_the_gpd_quantile_not_the_exponential_one() -> None:
    """GPD(shape 0.2, scale 1) excesses: the limit follows the heavy tail (an exponential fit with
    the same mean excess would be far lower)."""
    rng = np.random.default_rng(2)
    xi, sigma = 0.2, 1.0
    y = sigma / xi * (rng.uniform(size=200_000) ** -xi - 1.0)
    exact = sigma / xi * ((1e-4 / 0.1) ** -xi - 1.0)
    got = fit(y, 0.1, 1e-4)
    assert got == pytest.approx(exact, rel=0.1)
    assert got > 1.3 * y.mean() * math.log(0.1 / 1e-4)


def test_few_peaks_leave_the_limit_to_the_caller() -> None:
    assert math.isnan(fit(np.ones(spot.MIN_PEAKS - 1), 0.1, 1e-3))
    assert math.isnan(fit(np.ones(50), 0.1, 0.5))  # the risk is not inside the tail


def test_shape_from_a_handful_of_peaks_is_pulled_towards_an_exponential_tail() -> None:
    """Twelve nearly equal excesses would say the tail ends right there (shape -> -inf); the limit
    stays beyond the largest of them."""
    y = np.linspace(0.9, 1.1, 12)
    assert fit(y, 0.05, 1e-4) > 1.1 + 0.5


def test_level_expects_enough_peaks_within_the_usual_quantiles() -> None:
    assert spot.level_quantile(100) == spot.LEVEL_MIN
    assert spot.level_quantile(1_000) == pytest.approx(1 - spot.PEAKS_WANTED / 1_000)
    assert spot.level_quantile(1_000_000) == spot.LEVEL_MAX
    assert spot.horizon(10) == spot.HORIZON_MIN


def test_cli_offers_every_method() -> None:
    from twinguard.pipelines import cli

    assert set(cli.LIMIT_METHODS) == set(spot.METHODS)
