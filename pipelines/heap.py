"""Cyclic-GC settings for a long-running dataflow process.

CPython's full (oldest-generation) collection walks every tracked object. After start-up (Numba,
XGBoost, Bytewax and librdkafka modules, the model, the kernels' warm-up) that is ~130k objects, none
of which ever become garbage, and in the paced e2e run (18k devices, 22k ev/s, 2-core VM) each full
collection paused the worker 0.1-1 s, 28 times in 75 s (`gc.callbacks`): the heaviest periodic
stall of detection latency. The steady state allocates few long-lived objects (the per-device
state is numpy arrays), so what start-up left is moved out of the collector's sight.
"""

from __future__ import annotations

import gc

# Young collections promote what a batch still holds (its consumed messages, outputs) to older
# generations, which then fill and trigger more full collections; a batch's worth of allocations
# between young collections keeps that churn down (CPython's default is 700).
GEN0_THRESHOLD = 20_000


def settle() -> None:
    """Call once start-up is done, just before the dataflow runs: collect once, then freeze the
    survivors (gc.freeze: later collections skip them) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, g1, g2)
