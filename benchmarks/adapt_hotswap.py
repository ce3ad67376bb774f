"""Issue 15 item 6c: a model hot-swap under load, on a real broker.

A simulated fleet (with attacks) runs live through `twinguard run` at a fixed total rate; halfway,
`twinguard model promote DIR` publishes a new version (the shipped model re-tagged: same trees, so
only the swap itself can change the numbers). Measured: every message accounted for (events folded
into twins = messages sent, dead letters), which model version scored each threat (one switch, no
threat scored by neither), and the pipeline latency before vs during the swap: per twin update,
its Kafka timestamp minus the event time of the newest event it holds ([pipeline]
twin_emit_interval_s is set to 0.5 s for this run, so that coalescing adds at most 0.5 s).

`python -m twinguard.benchmarks.adapt_hotswap --brokers HOST:PORT --out DIR` (e.g. inside
deploy/kafka/with-broker.sh); it creates and deletes its own topics.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from twinguard.benchmarks.adapt_live import (
    PacedFleet,
    bench_config,
    drop_topics,
    finish_run,
    model_version_dir,
    pct,
    records,
    start_run,
    twinguard,
    write_results,
)
from twinguard.benchmarks.harness import loadavg
from twinguard.pipelines.sim.fleet import SimConfig

NEW_VERSION = "xgb-hotswap-bench"
EMIT_INTERVAL_S = "0.5"


def run(brokers: str, out: Path, devices: int, rate: float, duration_s: float, swap_at_s: float,
        before_s: float, during_s: float, seed: int) -> Path:
    load_start = loadavg()
    cfg = bench_config(brokers, "hotswap")
    os.environ["TWINGUARD__PIPELINE__TWIN_EMIT_INTERVAL_S"] = EMIT_INTERVAL_S  # for the child
    try:
        with tempfile.TemporaryDirectory() as tmp:
            new = model_version_dir(Path(tmp) / "v2", NEW_VERSION)
            fleet = PacedFleet(cfg, SimConfig(devices=devices, duration_s=duration_s, rate=rate,
                                              seed=seed))
            out.mkdir(parents=True, exist_ok=True)
            log = out / "adapt_hotswap.run.log"
            proc = start_run(cfg, log, until_idle=10)
            fleet.start()
            time.sleep(swap_at_s)
            swap_ms = int(time.time() * 1000)
            r = twinguard(cfg, "model", "promote", str(new), "--note", "benchmark")
            if r.returncode != 0:
                raise RuntimeError(f"twinguard model promote failed: {r.stderr.strip()}")
            fleet.join()
            if fleet.error:
                raise RuntimeError(fleet.error)
            cpu_s = finish_run(proc, log)
        results = _measure(cfg_records(cfg), swap_ms, before_s, during_s, fleet.sent)
        results.update(devices=devices, rate_per_s=rate, duration_s=duration_s,
                       swap_at_s=swap_at_s, seed=seed, twin_emit_interval_s=float(EMIT_INTERVAL_S),
                       run_cpu_s=round(cpu_s, 1), loadavg_at_start=load_start)
    finally:
        os.environ.pop("TWINGUARD__PIPELINE__TWIN_EMIT_INTERVAL_S", None)
        drop_topics(cfg)
    return write_results(out, "adapt_hotswap", results, _summary(results))


def cfg_records(cfg: Any) -> dict[str, list[tuple[dict[str, Any], int]]]:
    return {role: records(cfg, getattr(cfg.topics, role)) for role in ("twins", "threats",
                                                                       "deadletter")}


def _measure(got: dict[str, list[tuple[dict[str, Any], int]]], swap_ms: int, before_s: float,
             during_s: float, sent: int) -> dict[str, Any]:
    twins: dict[str, dict[str, Any]] = {}
    before, during = [], []
    for t, ts in got["twins"]:
        twins[t["device_id"]] = t
        lat = ts - t["last_seen"]
        if swap_ms - before_s * 1000 <= ts < swap_ms:
            before.append(lat)
        elif swap_ms <= ts < swap_ms + during_s * 1000:
            during.append(lat)
    threats = sorted((t for t, _ in got["threats"]), key=lambda t: t["detected_at"])
    seq = [t["model_version"] for t in threats]
    switches = sum(1 for a, b in zip(seq, seq[1:], strict=False) if a != b)
    first_new = next((t["detected_at"] for t in threats if t["model_version"] == NEW_VERSION), None)
    return {
        "telemetry_sent": sent, "events_folded": sum(int(t["version"]) for t in twins.values()),
        "twins": len(twins), "dead_letters": len(got["deadletter"]),
        "threats_by_version": {v: seq.count(v) for v in dict.fromkeys(seq)},
        "version_switches": switches,
        "first_new_version_threat_after_promote_s": (round((first_new - swap_ms) / 1000, 1)
                                                     if first_new else None),
        "latency_ms_before": {"p50": pct(before, 50), "p99": pct(before, 99), "n": len(before),
                              "window_s": before_s},
        "latency_ms_during": {"p50": pct(during, 50), "p99": pct(during, 99), "n": len(during),
                              "window_s": during_s},
    }


def _summary(r: dict[str, Any]) -> list[str]:
    b, d = r["latency_ms_before"], r["latency_ms_during"]
    return [f"{r['devices']} devices at {r['rate_per_s']:g} events/s for {r['duration_s']:g} s; "
            f"`model promote` at {r['swap_at_s']:g} s",
            f"messages sent {r['telemetry_sent']}, folded into twins {r['events_folded']}, "
            f"dead letters {r['dead_letters']}",
            f"threats by model version {r['threats_by_version']} ({r['version_switches']} switch)",
            f"latency event -> twin on Kafka, p50/p99 ms: {b['p50']}/{b['p99']} in the "
            f"{b['window_s']:g} s before the swap, {d['p50']}/{d['p99']} in the {d['window_s']:g} s "
            "from the promote",
            f"run CPU {r['run_cpu_s']} s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="Kafka bootstrap servers")
    p.add_argument("--out", required=True, help="results folder (adapt_hotswap.json/.md)")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=2000.0, help="total events/s (default 2000)")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of live telemetry")
    p.add_argument("--swap-at", type=float, default=60.0, help="promote after this many seconds")
    p.add_argument("--before", type=float, default=30.0, help="latency window before the swap (s)")
    p.add_argument("--during", type=float, default=15.0, help="latency window from the promote (s)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    run(a.brokers, Path(a.out), a.devices, a.rate, a.duration, a.swap_at, a.before, a.during, a.seed)


if __name__ == "__main__":
    main()
