"""Compare settings (or builds) by the pipeline's delay at one paced rate, trials alternated.

    python -m twinguard.benchmarks.latency_ab --rate 5000 --duration 60 --trials 3 --out DIR \\
        --variant before:TWINGUARD__PIPELINE__TICK_S=1.0 --variant after:

Each trial runs every variant once, in turn, on one private broker: a fresh paced fleet per run
(`e2e_suite.latency`, the sustained suite's step), the variant's TWINGUARD__* variables given to the
dataflow child only. Machines here are shared, so one trial of A next to one of B says more than
two runs an hour apart: the report gives per-variant medians, the ratio to the first variant and
the load average beside every run. Writes DIR/latency_ab.json and prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from twinguard.benchmarks import e2e_suite, flamegraph
from twinguard.benchmarks.broker import private_broker
from twinguard.benchmarks.harness import Stat, log
from twinguard.benchmarks.workload import generate
from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import Runtime

PER_DEVICE_PROBE = 200  # devices of the short fleet that measures the mean report rate


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`name:KEY=VALUE,KEY=VALUE` (no variables after the colon: the defaults)."""
    name, _, rest = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"variant {text!r}: give it a name, e.g. before:KEY=VALUE")
    env: dict[str, str] = {}
    for kv in filter(None, rest.split(",")):
        k, eq, v = kv.partition("=")
        if not eq or not k.startswith("TWINGUARD__"):
            raise argparse.ArgumentTypeError(f"variant {name}: {kv!r} is not TWINGUARD__...=VALUE")
        env[k] = v
    return name, env


def _row(res: dict[str, Any]) -> dict[str, Any]:
    lat = res["latency_ms"]
    cpu = res["run"].get("cpu") or {}
    return {"delay_p50": (lat.get("append_minus_evidence_complete") or {}).get("p50"),
            "delay_p99": (lat.get("append_minus_evidence_complete") or {}).get("p99"),
            "after_window_end_p99": lat["append_minus_window_end"].get("p99"),
            "to_detected_p99": (lat.get("evidence_complete_to_detected_ms") or {}).get("p99"),
            "threats": lat["append_minus_window_end"].get("n"),
            "latency_p99": lat["right_class"].get("p99"),
            "consume_lag_p99": (res["run"].get("consume_lag_ms") or {}).get("p99"),
            "poll_gap_max": (res["run"].get("poll_gap_ms") or {}).get("max"),
            "dataflow_cores": cpu.get("dataflow_cores"),
            "cpu_us_per_event": cpu.get("dataflow_cpu_us_per_event"),
            "accounted": bool(res["accounting"].get("all_accounted")),
            "producer_started_late_ms": res["producer"]["started_late_ms"],
            "send_lag_p99": res["producer"]["send_lag_ms"]["p99"]}


def run(variants: list[tuple[str, dict[str, str]]], rate: float, duration_s: float, trials: int,
        out: Path, config_path: str | None, processes: int = 1, profile: bool = False
        ) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    logdir = out / "logs"
    logdir.mkdir(exist_ok=True)
    cfg = load_config(config_path)
    rt = Runtime.from_config(cfg)
    probe = generate(rt, PER_DEVICE_PROBE, 20)
    runs: list[dict[str, Any]] = []
    with private_broker() as brokers:
        for t in range(trials):
            for name, env in variants:
                load = os.getloadavg()[0]
                res = e2e_suite.latency(brokers, rt, rate * 2, probe.events_per_device_s,
                                        len(probe) / max(probe.generate_s, 1e-3), duration_s,
                                        logdir, cfg.topics.partitions, config_path,
                                        fixed_rate=rate, env=env, name=f"ab-{name}-t{t + 1}",
                                        processes=processes,
                                        profile_out=(out / f"profile-{name}-t{t + 1}.folded"
                                                     if profile else None))
                if profile:
                    flamegraph.write(out / f"profile-{name}-t{t + 1}.folded",
                                     out / f"flamegraph-{name}-t{t + 1}.svg",
                                     f"dataflow process, paced at {rate:,.0f} ev/s ({name})")
                row = {"variant": name, "trial": t + 1, **_row(res),
                       "loadavg_1m": [round(load, 2), round(os.getloadavg()[0], 2)]}
                runs.append(row)
                log(f"latency_ab: {json.dumps(row)}")
                (out / "latency_ab.json").write_text(json.dumps({"runs": runs}, indent=1))
    summary: dict[str, Any] = {}
    for name, env in variants:
        mine = [r for r in runs if r["variant"] == name]
        summary[name] = {"env": env, **{k: Stat([float(r[k]) for r in mine if r[k] is not None]
                                                ).median
                                        for k in ("delay_p50", "delay_p99", "after_window_end_p99",
                                                  "to_detected_p99", "cpu_us_per_event")}}
    first = variants[0][0]
    base = summary[first]["delay_p99"]
    for row in summary.values():
        row["delay_p99_ratio_to_" + first] = round(row["delay_p99"] / base, 3) if base else None
    doc = {"rate": rate, "duration_s": duration_s, "trials": trials, "processes": processes,
           "summary": summary,
           "runs": runs}
    (out / "latency_ab.json").write_text(json.dumps(doc, indent=1))
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=5000, help="paced events/s (default 5000)")
    ap.add_argument("--duration", type=float, default=60, help="seconds per run (default 60)")
    ap.add_argument("--trials", type=int, default=3, help="runs per variant, alternated")
    ap.add_argument("--variant", type=parse_variant, action="append", required=True,
                    help="NAME:TWINGUARD__SECTION__KEY=VALUE,... (repeat; the first is the base)")
    ap.add_argument("--processes", type=int, default=1, help="dataflow processes (default 1)")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the dataflow during each run: profile-*.folded + flamegraph-*.svg")
    ap.add_argument("--config", default=None, help="twinguard config file")
    ap.add_argument("--out", required=True, type=Path, help="folder for latency_ab.json + logs")
    a = ap.parse_args()
    doc = run(a.variant, a.rate, a.duration, a.trials, a.out, a.config, a.processes, a.profile)
    print(json.dumps(doc["summary"], indent=1))


if __name__ == "__main__":
    main()
