"""When simulated messages are sent: report times and losses as a pure function of (seed, device,
step), so attacks can be planned and labelled before any physics runs; random attack send times."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]

JITTER_FRAC = 0.05      # report time jitter, share of the interval
DROP_P = 0.001          # lost messages (a seq gap)


def _splitmix(x: U64) -> U64:
    """SplitMix64 finaliser, vectorised (uint64 arithmetic wraps, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: U64 = x ^ (x >> np.uint64(31))
    return out


class ReportClock:
    """Every device's report schedule (interval, phase, hash-based jitter and drops) over a run."""

    def __init__(self, seed: int, iv_ms: F64, phase: F64, dur_ms: int) -> None:
        # streams of the timing hash: 0 = report jitter, 1 = drops
        self._hash_base = [int(x) for x in np.random.SeedSequence([seed, 99]).generate_state(
            2, np.uint64)]
        self.iv_ms, self.phase, self.dur_ms = iv_ms, phase, dur_ms
        self.jit = np.floor(JITTER_FRAC * iv_ms).astype(np.int64)

    def _u01(self, stream: int, dev: Arr, k: Arr) -> F64:
        """Uniform [0, 1) that depends only on (seed, stream, device, step): timing is a pure function."""
        h = _splitmix(_splitmix(np.asarray(dev, np.uint64) + np.uint64(self._hash_base[stream]))
                      ^ np.asarray(k, np.uint64))
        u: F64 = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return u

    def report_ts(self, dev: Arr, k: Arr) -> I64:
        """Report time (ms since start) of device step k: phase + k intervals + jitter, floored."""
        iv = self.iv_ms[dev]
        base = np.floor((self.phase[dev] + k) * iv).astype(np.int64)
        jit = np.floor(self._u01(0, dev, k) * (self.jit[dev] + 1)).astype(np.int64)
        out: I64 = base + jit
        return out

    def dropped(self, dev: Arr, k: Arr) -> Bools:
        """Whether device step k is lost on the way (its seq is skipped)."""
        out: Bools = self._u01(1, dev, k) < DROP_P
        return out

    def steps_between(self, d: int, a: int, b: int) -> tuple[I64, I64, Bools]:
        """Steps of device d with report time in [a, b] (and inside the run): ks, ts, kept."""
        iv = float(self.iv_ms[d])
        ks = np.arange(max(int(a // iv) - 2, 0), int(b // iv) + 2, dtype=np.int64)
        ts = self.report_ts(np.full(len(ks), d), ks)
        m = (ts >= a) & (ts <= b) & (ts < self.dur_ms)
        ks, ts = ks[m], ts[m]
        return ks, ts, ~self.dropped(np.full(len(ks), d), ks)


def send_times(rng: np.random.Generator, a0: int, a1: int, rate: float, avoid: I64) -> I64:
    """Random (Poisson-like) send times at `rate`/s in [a0, a1], none on an `avoid` ms."""
    n = max(int(round((a1 - a0) * rate / 1000.0)), 1)
    ts = np.unique(np.rint(rng.uniform(a0, a1, n)).astype(np.int64))
    out: I64 = np.setdiff1d(ts, avoid)
    return out
