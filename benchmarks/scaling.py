"""Scaling suite: the production flow under `python -m bytewax.run` with 1, 2 and 4 processes.

Same input topic as e2e. The flow factory `twinguard.benchmarks.run_child:scaling_flow()` is
`twinguard.pipelines.flow:build_flow()` with the counting source wrapper, which ends the flow once the topic
is drained (plain build_flow() under bytewax.run never ends). events/s = messages / (last partition
drained - first message in hand) across all processes (same host clock). Trials alternate the
process counts so the machine's noise hits all alike.

On a machine with fewer cores than processes, events/s cannot grow with processes; what must stay
flat is the dataflow's CPU per event (no work added by spreading), and 1e6 / (CPU µs per event) is
the events/s one core sustains: the number to size a cluster with (README, "Deploy on a cluster").
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from twinguard.benchmarks import broker
from twinguard.benchmarks.e2e_suite import accounting, aggregate_stats, child_env
from twinguard.benchmarks.harness import PYTHON, Stat, log
from twinguard.pipelines.kafka.local import free_port

FACTORY = "twinguard.benchmarks.run_child:scaling_flow()"


def run_cluster(brokers: str, topic: str, procs: int, name: str, logdir: Path, partitions: int,
                config_path: str | None, epoch_s: float, timeout_s: float) -> dict[str, Any]:
    topics = broker.output_topics(brokers, name, partitions)
    stats = logdir / name
    stats.mkdir(parents=True, exist_ok=True)
    env = child_env(brokers, topic, topics, config_path,
                    {"BENCH_STATS_DIR": str(stats), "BENCH_IDLE_S": "3"})
    # bytewax.run takes whole seconds for -s (the epoch length without recovery)
    base = [PYTHON, "-m", "bytewax.run", FACTORY, "-s", str(max(round(epoch_s), 1))]
    addrs = ";".join(f"127.0.0.1:{free_port()}" for _ in range(procs))
    running: list[tuple[subprocess.Popen[bytes], Path]] = []
    t0 = time.monotonic()
    for i in range(procs):
        cmd = base + (["-i", str(i), "-a", addrs] if procs > 1 else [])
        lp = logdir / f"{name}-p{i}.log"
        with lp.open("wb") as lf:
            running.append((subprocess.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT), lp))
    failed = []
    for proc, lp in running:
        try:
            rc = proc.wait(timeout=max(timeout_s - (time.monotonic() - t0), 1))
        except subprocess.TimeoutExpired:
            for p, _ in running:
                p.kill()
                p.wait()
            raise RuntimeError(f"{name}: did not finish in {timeout_s:.0f} s; see {lp}") from None
        if rc != 0:
            failed.append(f"{lp} (exit {rc})")
    if failed:
        raise RuntimeError(f"{name}: process(es) failed: {', '.join(failed)}")
    res = aggregate_stats(stats)
    res["process_wall_s"] = round(time.monotonic() - t0, 2)
    res["topics"] = topics
    return res


def median_cpu(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median over trials of each CPU share (`e2e_suite.cpu_shares`): dataflow and broker cores,
    the dataflow's CPU per event. On 2 cores, 2 processes can only gain what the broker leaves."""
    keys = sorted({k for r in runs for k in r.get("cpu", {})})
    return {k: round(Stat([r["cpu"][k] for r in runs if k in r.get("cpu", {})]).median, 2)
            for k in keys}


PROCESS_COUNTS = (1, 2, 4)


def run(brokers: str, topic: str, expected: int, logdir: Path, partitions: int,
        config_path: str | None, n_trials: int, epoch_s: float) -> dict[str, Any]:
    samples: dict[int, list[float]] = {n: [] for n in PROCESS_COUNTS}
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in PROCESS_COUNTS}
    timeout = 180 + expected / 2000
    for t in range(n_trials):
        for procs in PROCESS_COUNTS:
            name = f"scale-{procs}p-t{t + 1}"
            res = run_cluster(brokers, topic, procs, name, logdir, partitions, config_path,
                              epoch_s, timeout)
            if res["messages"] != expected:
                raise RuntimeError(f"{name} consumed {res['messages']} of {expected} messages")
            if t == 0:
                res["accounting"] = accounting(brokers, res["topics"], expected)
            samples[procs].append(res["events_per_s"])
            runs[procs].append(res)
            log(f"scaling: {procs} process(es), trial {t + 1}/{n_trials}: "
                f"{res['events_per_s']:,.0f} ev/s in {res.get('elapsed_s')} s, "
                f"{res.get('cpu', {}).get('dataflow_cpu_us_per_event', '?')} µs CPU/event")
    stats = {n: Stat(samples[n]) for n in PROCESS_COUNTS}
    cpu = {str(n): median_cpu(rs) for n, rs in runs.items()}
    one = stats[1].median
    return {"events_per_s_1_process": stats[1].as_dict(0),
            **{f"events_per_s_{n}_processes": stats[n].as_dict(0) for n in PROCESS_COUNTS[1:]},
            **{f"speedup_{n}_processes": round(stats[n].median / one, 3) if one else None
               for n in PROCESS_COUNTS[1:]},
            "per_process_count": [per_count(n, stats[n], cpu[str(n)], partitions)
                                  for n in PROCESS_COUNTS],
            "cpu": cpu,
            "runs": runs, "command": f"python -m bytewax.run \"{FACTORY}\" -s {max(round(epoch_s), 1)} "
                                     "[-i I -a \"127.0.0.1:p1;...;127.0.0.1:pN\"]",
            "definition": "messages / (last partition drained - first message in hand) across "
                          f"processes; 1 worker per process, {partitions} partitions; projected "
                          "events/s per core = 1e6 / dataflow CPU µs per event"}


def per_count(procs: int, stat: Stat, cpu: dict[str, float], partitions: int) -> dict[str, Any]:
    """One row of the scaling table: throughput, cores used, CPU per event, events/s per core."""
    us = cpu.get("dataflow_cpu_us_per_event")
    return {"processes": procs, "events_per_s": round(stat.median),
            "dataflow_cores": cpu.get("dataflow_cores"), "cpu_us_per_event": us,
            "projected_events_per_s_per_core": round(1e6 / us) if us else None,
            "partitions_per_worker": round(partitions / procs, 2)}
