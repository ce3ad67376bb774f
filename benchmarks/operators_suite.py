"""Operators suite (no Kafka): decode JSON -> twin store + window kernels -> detectors -> XGBoost ->
encoded outputs, in-process through `twinguard.pipelines.offline.run_offline` (the dataflow's own steps minus
Bytewax), plus a per-stage breakdown so the bottleneck is visible.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from twinguard.benchmarks.harness import Stat, log, timed
from twinguard.benchmarks.workload import Workload, generate
from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.fast import decode_batch
from twinguard.operators.decode.telemetry import _decoder
from twinguard.operators.decode.telemetry import decode_batch as reference_decode_batch
from twinguard.operators.detect import multivariate
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.twin import engine as engine_mod
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.engine import ShardEngine
from twinguard.operators.twin.store import TwinStore
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import run_offline
from twinguard.schemas.messages import canonical_bytes

CHUNK = 2000  # = kafka.consume_batch: one source poll per chunk, as on Kafka


def accounted(outputs: list[OutMsg]) -> tuple[int, int]:
    """(events folded into twins, dead letters) from a run's outputs (latest twin per device)."""
    latest: dict[bytes, int] = {}
    dead = 0
    dec = msgspec.json.Decoder()
    for m in outputs:
        if m.role == "twins":
            latest[m.key] = int(dec.decode(m.value)["version"])
        elif m.role == "deadletter":
            dead += 1
    return sum(latest.values()), dead


def throughput(rt: Runtime, w: Workload, n_trials: int) -> dict[str, Any]:
    """events/s of run_offline over the whole workload: warm-up, then n_trials timed runs."""
    log(f"operators: warm-up on {min(len(w), 50_000)} events")
    warm = Workload(w.devices, w.duration_s, w.seed, w.start_ms, w.keys[:50_000],
                    w.values[:50_000], w.ts_ms[:50_000], [], set(), 0.0)
    run_offline(warm.chunks(CHUNK), rt)
    wall, cpu, check = [], [], None
    for i in range(n_trials):
        t = timed(lambda: run_offline(w.chunks(CHUNK), rt))
        wall.append(len(w) / t.wall_s)
        cpu.append(len(w) / t.cpu_s)
        if check is None:
            processed, dead = accounted(t.result.outputs)
            check = {"events_in": t.result.events_in, "processed_in_twins": processed,
                     "dead_letters": dead, "all_accounted": processed + dead == len(w)}
        log(f"operators: trial {i + 1}/{n_trials}: {len(w) / t.wall_s:,.0f} ev/s wall, "
            f"{len(w) / t.cpu_s:,.0f} ev/s per CPU-second")
    return {"events_per_s_wall": Stat(wall).as_dict(0), "events_per_cpu_s": Stat(cpu).as_dict(0),
            "accounting": check}


@dataclass
class Stages:
    """Seconds spent per stage, accumulated by patched wrappers during one instrumented run."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count(self, name: str, fn: Callable[..., Any], n: Callable[[Any, Any], int]
              ) -> Callable[..., Any]:
        """Count what each call handles (`n(first argument, result)`), time nothing."""
        acc = self.counts

        def counted_call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            acc[name] += n(args[1] if len(args) > 1 else None, out)
            return out
        return counted_call

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        acc = self.seconds

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[name] += time.perf_counter() - t0
        return timed_call


@contextmanager
def _patched(st: Stages) -> Iterator[None]:
    """Time the engine's internal steps (all called per batch or per window set, not per event)."""
    targets: list[tuple[Any, str, str]] = [
        (TwinStore, "slots_for", "engine.slot_lookup"),
        (K, "update_batch", "engine.kernels.update"),
        (K, "close_due", "engine.kernels.close_due"),
        (engine_mod, "run_detectors", "engine.detectors"),
        (multivariate, "judge", "engine.multivariate"),
        (Scorer, "predict", "engine.xgboost_predict"),
        (Scorer, "contributions", "engine.xgboost_contributions"),
        (ShardEngine, "_threat", "engine.encode_threats_actions"),
        (ShardEngine, "_emit_twins", "engine.encode_twins"),  # sweeps and the final flush
    ]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets + [(ShardEngine, "_judge", "")]]
    try:
        for obj, attr, name in targets:
            setattr(obj, attr, st.wrap(name, getattr(obj, attr)))
        # what the per-window and per-twin costs are divided by
        ShardEngine._judge = st.count("windows", ShardEngine._judge,  # type: ignore[method-assign]
                                      lambda w, _out: len(w))
        ShardEngine._emit_twins = st.count(  # type: ignore[method-assign]
            "twins", ShardEngine._emit_twins, lambda _lo, out: len(out))
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def breakdown(rt: Runtime, w: Workload) -> dict[str, Any]:
    """One instrumented pass mirroring run_offline, timing decode / shard split / engine steps."""
    st = Stages()
    engines: dict[int, ShardEngine] = {}
    sec = st.seconds
    t_all = time.perf_counter()
    with _patched(st):
        offset = 0
        for keys, values in w.chunks(CHUNK):
            offsets = np.arange(offset, offset + len(values), dtype=np.int64)
            offset += len(values)
            t0 = time.perf_counter()
            d = decode_batch(RawBatch("bench", 0, offsets, list(keys), list(values)), rt.types,
                             rt.keys, rt.decode)
            t1 = time.perf_counter()
            parts = d.oks.split_by_shard()
            t2 = time.perf_counter()
            for shard, part in parts:
                eng = engines.get(shard)
                if eng is None:
                    eng = engines[shard] = ShardEngine.fresh(rt.engine)
                eng.process(part)
            t3 = time.perf_counter()
            sec["decode"] += t1 - t0
            sec["shard_split"] += t2 - t1
            sec["engine"] += t3 - t2
        t0 = time.perf_counter()
        for eng in engines.values():
            eng.flush()
        sec["engine"] += time.perf_counter() - t0
    total = time.perf_counter() - t_all
    inner = sum(v for k, v in sec.items() if k.startswith("engine."))
    # the patched engine.* steps never nest in one another, so they add up inside `engine`
    sec["engine.other_python"] = max(sec["engine"] - inner, 0.0)
    n = len(w)
    stages = {k: {"seconds": round(v, 3), "us_per_event": round(v / n * 1e6, 3),
                  "pct_of_total": round(100 * v / total, 1)}
              for k, v in sorted(sec.items())}
    windows, twins = st.counts["windows"], st.counts["twins"]
    per_window = sum(sec[k] for k in ("engine.kernels.close_due", "engine.detectors",
                                      "engine.multivariate", "engine.xgboost_predict",
                                      "engine.xgboost_contributions",
                                      "engine.encode_threats_actions"))
    return {"events": n, "total_s": round(total, 3),
            "events_per_s_instrumented": round(n / total), "stages": stages,
            # judging a window (close + detectors + multivariate + model + threats) and emitting
            # a twin, per item: they scale with windows and changed devices, not with events
            "windows": windows, "twins": twins,
            "us_per_window": round(per_window / windows * 1e6, 2) if windows else None,
            "us_per_twin": round(sec["engine.encode_twins"] / twins * 1e6, 2) if twins else None,
            "decode_parts": decode_parts(rt, w)}


def decode_parts(rt: Runtime, w: Workload, limit: int = 30_000) -> dict[str, Any]:
    """Micro-benchmarks of decode's per-message pieces (median of 3, µs per event)."""
    import hashlib
    import hmac

    from twinguard.operators.decode import telemetry as decode_mod

    values = w.values[:limit]
    evs = [_decoder.decode(v) for v in values]
    keys = rt.keys
    check = getattr(decode_mod, "_check_signature", None)  # decode's own signature step
    pairs = [(keys.key(ev.device_id), v) for ev, v in zip(evs, values, strict=True)]

    def json_decode() -> None:
        for v in values:
            _decoder.decode(v)

    def signature() -> None:
        if check is not None:
            for ev, v in zip(evs, values, strict=True):
                check(ev, v, keys)
        else:
            for ev in evs:
                keys.check(ev.device_id, canonical_bytes(ev), ev.sig)

    def hmac_only() -> None:
        for k, v in pairs:
            hmac.digest(k, v, hashlib.sha256)

    def full_decode(fn: Callable[..., Any] = decode_batch) -> None:
        for i in range(0, len(values), CHUNK):
            vals = values[i:i + CHUNK]
            fn(RawBatch("bench", 0, np.arange(len(vals), dtype=np.int64),
                        list(w.keys[i:i + CHUNK]), list(vals)), rt.types, rt.keys, rt.decode)

    def reference_decode() -> None:
        full_decode(reference_decode_batch)

    out: dict[str, Any] = {"events": len(values)}
    for name, fn in (("decode_batch_total", full_decode),
                     ("reference_decode_batch_total", reference_decode),
                     ("msgspec_json_to_struct", json_decode),
                     ("signature_check", signature), ("hmac_sha256_digest_only", hmac_only)):
        fn()
        us = Stat([timed(fn).wall_s / len(values) * 1e6 for _ in range(3)]).median
        out[name + "_us"] = round(us, 3)
    return out


def by_fleet_size(rt: Runtime, sizes: tuple[int, ...], duration_s: float,
                  n_trials: int) -> dict[str, Any]:
    """Cost per event as the fleet grows over the same event-time span (several windows per device):
    what a user sizing a deployment needs, and where per-device state starts to cost cache misses."""
    out: dict[str, Any] = {}
    for devices in sizes:
        log(f"operators: fleet of {devices:,} devices x {duration_s:.0f} s")
        w = generate(rt, devices, duration_s)
        res = throughput(rt, w, n_trials)
        per_cpu_s = res["events_per_cpu_s"]["median"]
        out[str(devices)] = {"events": len(w), "events_per_cpu_s": res["events_per_cpu_s"],
                             "us_cpu_per_event": round(1e6 / per_cpu_s, 3) if per_cpu_s else None,
                             "all_accounted": res["accounting"]["all_accounted"],
                             "generate_s": round(w.generate_s, 1)}
        del w
    return out


def run(rt: Runtime, w: Workload, n_trials: int, fleet_sizes: tuple[int, ...] = (),
        fleet_duration_s: float = 60.0) -> dict[str, Any]:
    res = throughput(rt, w, n_trials)
    log("operators: per-stage breakdown (instrumented pass)")
    res["breakdown"] = breakdown(rt, w)
    res["events_per_s_per_core"] = res["events_per_cpu_s"]["median"]
    res["definition"] = ("events / CPU-seconds of the benchmark process for run_offline over the "
                         "workload (decode JSON + HMAC + twin store + Numba windows + detectors + "
                         "XGBoost + encoded twins/threats/actions); XGBoost nthread=1, one thread")
    res["workload"] = w.describe()
    res["chunk"] = CHUNK
    if fleet_sizes:
        sizes = by_fleet_size(rt, fleet_sizes, fleet_duration_s, n_trials)
        res["by_devices"] = sizes
        res["events_per_cpu_s_by_devices"] = {k: v["events_per_cpu_s"]["median"]
                                              for k, v in sizes.items()}
    return res
