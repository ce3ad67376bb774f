"""`twinguard demo` / `make demo`: the production dataflow on an embedded simulated fleet, no Kafka.

Same decode, twin store, kernels, detectors, model and policy as `twinguard run`; only the source (the
simulator, with a sprinkle of malformed messages) and the sink (JSON-lines files) differ.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from bytewax._bytewax import cli_main
from tqdm import tqdm

from twinguard.operators.io.local import Chunk, ChunkSource, JsonLinesSink, read_jsonl
from twinguard.pipelines import heap
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate, format_table
from twinguard.pipelines.evaluation.plots import plot_demo
from twinguard.pipelines.flow import Runtime, build_flow
from twinguard.pipelines.kafka.risk_report import format_table as format_risk
from twinguard.pipelines.kafka.risk_report import rank
from twinguard.pipelines.offline import warm_up
from twinguard.pipelines.respond.embedded import respond_offline
from twinguard.pipelines.sim.activity import ActivitySimulator
from twinguard.pipelines.sim.faults import corrupt_some
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.pipelines.sim.labels import write_labels
from twinguard.schemas.messages import TwinState

CORRUPT_RATE = 0.002


@dataclass(frozen=True)
class DemoConfig:
    devices: int = 600
    duration_s: float = 90.0
    seed: int = 7
    out: Path = Path("out/demo")
    workers: int = 1


def run_demo(cfg: Config, dc: DemoConfig) -> dict[str, Any]:
    """Run the flow over the simulated fleet, then print and save a summary and a plot."""
    rt = Runtime.from_config(cfg)
    fleet = FleetSimulator(SimConfig(devices=dc.devices, duration_s=dc.duration_s, seed=dc.seed),
                           rt.types, rt.keys)
    operators = ActivitySimulator(fleet)  # operators' commands; adds insider + drift labels
    n_activity = len(operators.rows)
    if dc.out.exists():
        shutil.rmtree(dc.out)
    dc.out.mkdir(parents=True)
    write_labels(fleet.labels, dc.out / "labels.jsonl")
    warm_up(rt)
    corrupted = Counter[str]()

    def chunks() -> Iterator[Chunk]:
        rng = random.Random(dc.seed)
        for role, keys, values, _ts in operators.interleave(fleet.batches()):
            if role == "activity":
                yield keys, values, cfg.topics.activity
                continue
            bad, n = corrupt_some(values, CORRUPT_RATE, rng)
            corrupted["n"] += n
            yield keys, bad

    bar = tqdm(total=fleet.expected_events() + n_activity, desc="twinguard demo", unit="ev",
               unit_scale=True)
    flow = build_flow(cfg, source=ChunkSource(chunks, on_chunk=bar.update),
                      sink=JsonLinesSink(dc.out), runtime=rt)
    heap.settle()
    t0 = time.perf_counter()
    cli_main(flow, workers_per_process=dc.workers, epoch_interval=timedelta(seconds=10))
    elapsed = time.perf_counter() - t0
    bar.close()
    summary = summarize(dc, fleet, elapsed, int(bar.n), corrupted["n"], n_activity, cfg)
    (dc.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarize(dc: DemoConfig, fleet: FleetSimulator, elapsed: float, events: int,
              corrupted: int, activity: int = 0, cfg: Config | None = None) -> dict[str, Any]:
    threats = read_jsonl(dc.out / "threats.jsonl")
    actions = read_jsonl(dc.out / "actions.jsonl")
    dead = read_jsonl(dc.out / "deadletter.jsonl")
    twins = {t["device_id"]: t for t in read_jsonl(dc.out / "twins.jsonl")}
    ev = evaluate(threats, fleet.labels, {d for d, _ in fleet.devices})
    plot = plot_demo(threats, fleet.labels, [d for d, _ in fleet.devices], dc.out / "threats.png")
    processed = sum(int(str(t["version"])) + int(str(t.get("commands", 0))) for t in twins.values())
    print()
    print(f"events: {events} in {elapsed:.1f} s = {events / elapsed:,.0f} events/s "
          f"({dc.devices} devices, {dc.duration_s:.0f} s simulated, {dc.workers} worker(s); "
          f"{activity} of them operator activity)")
    print(f"accounted: {processed} processed + {len(dead)} dead letters = {processed + len(dead)} "
          f"of {events} ({corrupted} malformed messages injected)")
    print(f"twins: {len(twins)}; threats: {len(threats)}; actions: {len(actions)} on "
          f"{len({a['device_id'] for a in actions})} devices")
    response = respond_offline(cfg or Config(), actions, twins.values(), dc.out)
    print("response (simulated actuators, dry run off; on Kafka: `twinguard respond`): "
          + ", ".join(f"{n} {s}" for s, n in sorted(response.items()) if n))
    print(format_table(ev))
    riskiest = rank((msgspec.convert(t, TwinState) for t in twins.values()), top=5)
    print("riskiest devices (patch priority; on Kafka: `twinguard risk`):")
    print(format_risk(riskiest, len(twins)))
    print(f"outputs: {dc.out}/{{twins,threats,actions,action_results,deadletter}}.jsonl, plot: {plot}")
    return {"events": events, "elapsed_s": round(elapsed, 3),
            "events_per_s": round(events / elapsed), "activity": activity, "processed": processed,
            "dead_letters": len(dead), "malformed_injected": corrupted, "twins": len(twins),
            "threats": len(threats), "actions": len(actions),
            "devices_acted_on": len({a["device_id"] for a in actions}),
            "response": dict(response),
            "detection": ev.summary(), "riskiest": [asdict(r) for r in riskiest]}
