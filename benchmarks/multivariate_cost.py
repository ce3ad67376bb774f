"""What the multivariate model costs: µs per closed window (learning and live) and bytes per device,
for devices of 4, 8 and 52 signals: `python -m twinguard.benchmarks.multivariate_cost`.

Synthetic correlated window means go straight through `multivariate.judge` (the call the engine
makes per set of closed windows), in batches of 2,000 windows over 1,000 devices, after a warm-up
that loads the Numba kernels. Per event, divide by the events in a window (a 1 Hz device with
10 s windows: 10).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from twinguard.operators.detect import multivariate as MV
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import MV_PHASE, multivariate_arrays

DEVICES = 1_000
BATCH = 2_000
LEARN = 360


def _means(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    factor = rng.normal(0.0, 1.0, (n, 2))
    mix = rng.normal(0.0, 1.0, (2, width))
    return factor @ mix + rng.normal(0.0, 0.2, (n, width))


def _run(arrays: dict[str, np.ndarray], istate: np.ndarray, nsig: np.ndarray, rng: np.random.Generator,
         width: int, windows: int, cfg: MV.MultivariateConfig) -> float:
    """Seconds spent in judge() for `windows` windows spread over the devices."""
    spent = 0.0
    for start in range(0, windows, BATCH):
        n = min(BATCH, windows - start)
        slots = (np.arange(start, start + n) % DEVICES).astype(np.int64)
        means = _means(rng, n, width)
        ones = np.ones(n, dtype=bool)
        t0 = time.perf_counter()
        MV.judge(arrays, istate, nsig, slots, ones, ones, means, cfg)
        spent += time.perf_counter() - t0
    return spent


def measure(width: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    arrays = multivariate_arrays(DEVICES, width)
    arrays["commands"] = np.zeros(DEVICES, dtype=np.int64)
    istate = np.zeros((DEVICES, K.N_ISTATE), dtype=np.int64)
    nsig = np.array([width], dtype=np.int64)
    cfg = MV.MultivariateConfig(LEARN, 0.001)
    learning = _run(arrays, istate, nsig, rng, width, DEVICES * (LEARN + 1), cfg)
    assert (arrays["mv_i"][:, MV_PHASE] == MV.LIVE).all()  # noqa: S101 - the setup, not a check
    live_windows = DEVICES * 200
    live = _run(arrays, istate, nsig, rng, width, live_windows, cfg)
    per_device = sum(a.nbytes for a in multivariate_arrays(1, width).values())
    return {"signals": width, "devices": DEVICES,
            "us_per_window_learning": round(learning / (DEVICES * (LEARN + 1)) * 1e6, 3),
            "us_per_window_live": round(live / live_windows * 1e6, 3),
            "bytes_per_device": per_device}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m twinguard.benchmarks.multivariate_cost",
                                description=__doc__)
    p.add_argument("--signals", type=int, nargs="+", default=[4, 8, 52],
                   help="device widths to measure")
    args = p.parse_args(argv)
    measure(4)  # load the kernels before any clock starts
    for width in args.signals:
        print(json.dumps(measure(width)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
