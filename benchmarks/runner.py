"""`twinguard bench`: run the chosen suites, write results.json / results.md / plots / profile.txt.

Suites run one after another (never two heavy ones at once). The Kafka suites share one private
broker and one input topic, so ours and the peers read the same bytes in the same run.
"""

from __future__ import annotations

import subprocess
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twinguard.benchmarks import (
    e2e_suite,
    flamegraph,
    memory,
    operators_suite,
    peers_suite,
    profiling,
    report,
    respond_suite,
    scaling,
    sustained,
)
from twinguard.benchmarks.harness import PYTHON, loadavg, log, machine, versions
from twinguard.benchmarks.workload import Workload, generate
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.flow import Runtime

SUITES = ("operators", "e2e", "peers", "scaling", "memory", "sustained", "respond")


@dataclass(frozen=True)
class Plan:
    devices: int  # fleet of the main workload (operators, e2e, peers, scaling)
    duration_s: float
    operator_trials: int
    e2e_trials: int
    latency_duration_s: float
    scaling_trials: int
    memory_sizes: tuple[int, ...]
    profile_s: float
    fleet_sizes: tuple[int, ...] = ()  # operators' cost per event as the fleet grows
    fleet_duration_s: float = 60.0  # event time of each of those fleets (several windows/device)
    sustained_start_rate: float = 30_000  # first rate of the sustained search (ev/s)
    sustained_duration_s: float = 180.0  # each step of it (>= 3 minutes for a result)
    sustained_refine: int = 2  # halvings between the last held and the first failed rate
    sustained_max_steps: int = 8
    latency_rate: float | None = None  # None: half the measured sustained rate
    respond_devices: int = 300  # paced fleet of the attack -> action run (respond suite)
    respond_duration_s: float = 90.0
    respond_paced: int = 200  # actions for the action -> executed run
    respond_burst: int = 2000  # actions per burst through the guard
    respond_trials: int = 3


# the latency run needs >= 60 s: shorter fleets start identity attacks before login profiles exist
QUICK = Plan(1_500, 40, 3, 2, 60, 1, (10_000, 100_000), 5, fleet_sizes=(1_000,),
             sustained_start_rate=5_000, sustained_duration_s=60.0, sustained_refine=0,
             sustained_max_steps=2, respond_devices=120, respond_duration_s=60.0, respond_paced=60,
             respond_burst=500)
FULL = Plan(10_000, 45, 5, 3, 75, 2, (10_000, 100_000, 1_000_000), 15,
            fleet_sizes=(1_000, 10_000, 100_000))


def run_bench(config_path: str | None, suites: list[str], quick: bool, out: Path,
              latency_rate: float | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    logdir = out / "logs"
    logdir.mkdir(exist_ok=True)
    plan = replace(QUICK if quick else FULL, latency_rate=latency_rate)
    cfg = load_config(config_path)
    r: dict[str, Any] = {
        "meta": {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
                 "suites": suites, "out": str(out)},
        "machine": machine(),
        "versions": versions(str(peers_suite.QUIX_ENV / "bin" / "python")
                             if (peers_suite.QUIX_ENV / "bin" / "python").exists() else None),
        "settings": {"plan": asdict(plan), "partitions": cfg.topics.partitions,
                     "consume_batch": cfg.kafka.consume_batch, "shards": cfg.pipeline.shards,
                     "window_ms": cfg.pipeline.window_ms,
                     "allowed_lateness_ms": cfg.pipeline.allowed_lateness_ms,
                     "twin_emit_interval_s": cfg.pipeline.twin_emit_interval_s,
                     "epoch_s": cfg.recovery.snapshot_interval_s,
                     "recovery": cfg.recovery.dir or "off", "config_file": config_path},
        "errors": {},
    }
    rt = Runtime.from_config(cfg)
    w: Workload | None = None
    if set(suites) & {"operators", "e2e", "peers", "scaling", "sustained"}:
        log(f"workload: {plan.devices:,} devices x {plan.duration_s:.0f} s simulated")
        w = generate(rt, plan.devices, plan.duration_s)
        r["workload"] = w.describe()
        log(f"workload: {len(w):,} messages, {len(w.labels)} attacks, generated in "
            f"{w.generate_s:.1f} s")
    profiles: dict[str, Any] = {}
    texts: list[str] = []

    def save() -> None:
        r["meta"]["loadavg_at_end"] = loadavg()
        r["profile"] = {k: v.as_dict() for k, v in profiles.items() if v is not None}
        if texts:
            (out / "profile.txt").write_text("\n".join(texts))
        report.write(r, out)

    def guarded(name: str, fn: Any) -> None:
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one failed suite must not lose the others
            r["errors"][name] = f"{type(e).__name__}: {e}"
            (logdir / f"{name}-error.txt").write_text(traceback.format_exc())
            log(f"{name}: FAILED: {e}")
        r["meta"].setdefault("suite_seconds", {})[name] = round(time.monotonic() - t0, 1)
        save()

    if "operators" in suites and w is not None:
        wl = w

        def ops() -> None:
            r["operators"] = operators_suite.run(rt, wl, plan.operator_trials, plan.fleet_sizes,
                                                 plan.fleet_duration_s)
            prof = _profile_operators(plan, out / "profile-operators.folded", logdir)
            flamegraph.write(out / "profile-operators.folded", out / "flamegraph-operators.svg",
                             "operators: run_offline in-process (decode -> shard engines)")
            profiles["operators (run_offline: decode -> shard engines, no Kafka)"] = prof
            texts.append(profiling.format_text("operators: run_offline in-process", prof))
        guarded("operators", ops)
    if "memory" in suites:
        def mem() -> None:
            r["memory"] = memory.run(list(plan.memory_sizes), logdir)
        guarded("memory", mem)
    kafka_suites = [s for s in ("e2e", "peers", "scaling", "sustained") if s in suites]
    if kafka_suites and w is not None:
        _kafka(r, cfg, rt, w, plan, kafka_suites, config_path, logdir, out, profiles, texts,
               guarded)
    if "respond" in suites:  # its own broker and fleet: it needs no workload
        def resp() -> None:
            r["respond"] = respond_suite.run(
                rt, plan.respond_devices, plan.respond_duration_s, plan.respond_paced,
                plan.respond_burst, plan.respond_trials, logdir, cfg.topics.partitions, config_path)
        guarded("respond", resp)
    r["meta"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    return r


def _kafka(r: dict[str, Any], cfg: Config, rt: Runtime, w: Workload, plan: Plan,
           suites: Sequence[str], config_path: str | None, logdir: Path, out: Path,
           profiles: dict[str, Any], texts: list[str], guarded: Any) -> None:
    from twinguard.benchmarks.broker import private_broker

    parts = cfg.topics.partitions
    try:
        with private_broker() as brokers:
            r["settings"]["broker"] = "private local Apache Kafka (twinguard.pipelines.kafka.local), " \
                                      "same host"
            state: dict[str, Any] = {}
            if "sustained" in suites:
                def sus(processes: int) -> None:
                    start = plan.sustained_start_rate
                    one = r.get("sustained") if processes > 1 else None
                    if one and one.get("events_per_s"):  # 2 processes start where 1 held
                        start = one["events_per_s"]
                    res = sustained.run(
                        brokers, rt, w.events_per_device_s, len(w) / max(w.generate_s, 1e-3), logdir,
                        parts, config_path, start, plan.sustained_duration_s,
                        refine=plan.sustained_refine, max_steps=plan.sustained_max_steps,
                        processes=processes)
                    if processes == 1:
                        r["sustained"] = res
                    # 1 process: its headline (steps are the top level's); 2: the whole search
                    r.setdefault("sustained", {}).setdefault("by_processes", {})[
                        str(processes)] = sustained.headline(res) if processes == 1 else res
                guarded("sustained", lambda: sus(1))
                guarded("sustained_2p", lambda: sus(2))
                if set(suites) <= {"sustained"}:
                    return

            def throughput() -> None:
                trials = plan.e2e_trials if "e2e" in suites else 1
                th = e2e_suite.throughput(brokers, w, trials, logdir, parts, config_path,
                                          plan.profile_s, out / "profile-e2e.folded")
                state["topic"] = th["topic"]
                r.setdefault("e2e", {})["throughput"] = th
                r["e2e"]["events_per_s"] = th["events_per_s"]["median"]
                prof = profiling.summarize(out / "profile-e2e.folded")
                flamegraph.write(out / "profile-e2e.folded", out / "flamegraph-e2e.svg",
                                 "e2e: the twinguard dataflow process (warm-up trial, Kafka in/out)")
                profiles["e2e (twinguard dataflow process, warm-up trial)"] = prof
                texts.append(profiling.format_text(
                    "e2e: the dataflow process during the warm-up trial", prof,
                    "Bytewax's Rust runtime and librdkafka threads are native: idle/wait time "
                    "shows under cli_main."))
            guarded("e2e", throughput)
            if "topic" not in state:
                return
            if "e2e" in suites:
                def lat() -> None:
                    lt = e2e_suite.latency(brokers, rt, r["e2e"]["events_per_s"],
                                           w.events_per_device_s, len(w) / max(w.generate_s, 1e-3),
                                           plan.latency_duration_s, logdir, parts, config_path,
                                           plan.latency_rate)
                    r["e2e"]["latency"] = lt
                    rc = lt["latency_ms"]["right_class"]
                    r["e2e"]["latency_ms"] = {"p50": rc["p50"], "p95": rc["p95"], "p99": rc["p99"],
                                              "n": rc["n"]}
                guarded("e2e_latency", lat)
            if "peers" in suites:
                def peers() -> None:
                    res = peers_suite.run(cfg, brokers, state["topic"], len(w), logdir, parts)
                    ours = r["e2e"]["events_per_s"]
                    for p in res.values():
                        if p.get("events_per_s"):
                            p["ratio_ours_over_peer"] = round(ours / p["events_per_s"], 2)
                    strongest = max((p.get("events_per_s") or 0 for p in res.values()), default=0)
                    if strongest:
                        res["ratio_ours_over_strongest"] = round(ours / strongest, 2)
                    res["note"] = (
                        "Peers compute a subset of our features (no HMAC, sequence, range/invariant "
                        "checks or baselines); missing features are NaN, so their predictions are a "
                        "cost baseline, not a detector. Naive peers (as the docs teach) score every "
                        "event with a 1-row XGBoost predict; expert peers parse each batch in one "
                        "polars call, fold windows with one group_by and score closed windows with "
                        "one predict per batch (their verdicts equal the per-event reference: "
                        "tests/unit/benchmarks/peers). Ours: 1 Bytewax worker, epoch 2 s; Bytewax "
                        "peers: 1 worker, default 10 s epoch; Quix: changelog off. All read the "
                        "same topic from the beginning.")
                    r["peers"] = res
                guarded("peers", peers)
            if "scaling" in suites:
                def scale() -> None:
                    r["scaling"] = scaling.run(brokers, state["topic"], len(w), logdir, parts,
                                               config_path, plan.scaling_trials,
                                               cfg.recovery.snapshot_interval_s)
                guarded("scaling", scale)
    except Exception as e:  # noqa: BLE001 - e.g. the broker could not start
        r["errors"]["kafka"] = f"{type(e).__name__}: {e}"
        log(f"kafka suites: FAILED: {e}")


def _profile_operators(plan: Plan, folded: Path, logdir: Path) -> profiling.Profile | None:
    """py-spy on a separate process looping run_offline over the same-sized workload."""
    ready = logdir / "profile-operators.ready"
    ready.unlink(missing_ok=True)
    lp = logdir / "profile-operators.log"
    with lp.open("wb") as lf:
        target = subprocess.Popen(
            [PYTHON, "-m", "twinguard.benchmarks.profiling", "operators-target", "--devices",
             str(min(plan.devices, 2000)), "--duration", str(plan.duration_s), "--seconds",
             str(plan.profile_s + 3), "--ready", str(ready)],
            stdout=lf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not ready.exists() and target.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    spy = profiling.record(target.pid, plan.profile_s, folded) if ready.exists() else None
    if spy is not None:
        spy.communicate(timeout=plan.profile_s + 120)
    target.wait(timeout=plan.profile_s + 300)
    return profiling.summarize(folded)
