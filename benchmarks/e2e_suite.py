"""End-to-end suite through a real local broker.

Throughput: the whole workload is produced to the input topic first; then the production dataflow
(twinguard.benchmarks.run_child = `twinguard run` + counting source wrapper) consumes it in a child process.
events/s = input messages / (time the last partition found no more input after its last message -
time the first message was handed to the dataflow), measured by the consumer side inside the child.
A single Bytewax worker runs every step for a batch before it polls again, so when the source
finds the topic drained the outputs of all earlier batches have been flushed to Kafka (the sink
flushes synchronously per batch).

Latency: a fresh fleet sized to half the measured sustained rate is produced paced to event time
(like `twinguard simulate --realtime`) while the dataflow runs; per attack, latency = broker append
time of the first right-class threat matching the attack (threats topic uses LogAppendTime) - event
time of the attack's first message (its label start). Split into stages: the detector's evidence
wait (window end - start, event time), the engine behind event time (the threat's `detected_at` -
window end) and the sink (append - `detected_at`); per class; per attack rows in
logs/e2e-latency-attacks.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinguard.benchmarks import broker, profiling
from twinguard.benchmarks.harness import PYTHON, Stat, log, percentile
from twinguard.benchmarks.workload import Workload, generate
from twinguard.operators.io.kafka import producer
from twinguard.pipelines.evaluation.match import evaluate
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.kafka import local as kafka_local
from twinguard.pipelines.sim.labels import AttackLabel


def child_env(brokers: str, input_topic: str, out_topics: dict[str, str],
              config_path: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TWINGUARD__KAFKA__BROKERS"] = brokers
    env["TWINGUARD__TOPICS__TELEMETRY"] = input_topic
    for role, name in out_topics.items():
        env[f"TWINGUARD__TOPICS__{role.upper()}"] = name
    if config_path:
        env["TWINGUARD_CONFIG"] = str(Path(config_path).resolve())
    broker = kafka_local.status()  # the private broker: its CPU use is recorded beside ours
    if broker is not None:
        env["BENCH_BROKER_PID"] = str(broker.pid)
    env.update(extra or {})
    return env


def aggregate_stats(stats_dir: Path) -> dict[str, Any]:
    """Sum the per-partition counters; elapsed = first message in hand -> last partition drained."""
    parts = [json.loads(p.read_text()) for p in sorted(stats_dir.glob("part-*.json"))]
    msgs = sum(int(p["messages"]) for p in parts)
    firsts = [p["first_t"] for p in parts if p["first_t"]]
    ends = [p["drained_t"] or p["last_t"] for p in parts if p["last_t"]]
    if not firsts or not ends:
        return {"messages": msgs, "partitions": len(parts), "events_per_s": 0.0}
    elapsed = max(ends) - min(firsts)
    out = {"messages": msgs, "partitions": len(parts), "processes": len({p["pid"] for p in parts}),
           "first_t": min(firsts), "end_t": max(ends), "elapsed_s": round(elapsed, 3),
           "events_per_s": msgs / elapsed if elapsed > 0 else 0.0}
    cpu = cpu_shares(parts, elapsed, msgs)
    if cpu:
        out["cpu"] = cpu
    lags = [float(x) for p in parts for x in p.get("consume_lag_ms") or []]
    if lags:  # paced runs: how far behind event time the source polled
        out["consume_lag_ms"] = {"polls": len(lags), "p50": round(percentile(lags, 50)),
                                 "p99": round(percentile(lags, 99)), "max": round(max(lags))}
    return out


def cpu_shares(parts: list[dict[str, Any]], elapsed: float, msgs: int) -> dict[str, float]:
    """Cores the dataflow processes and the broker used over the measured span, and the dataflow's
    CPU per event: whether a run was short of cores (the machine) or of work (the code)."""
    with_cpu = [p for p in parts if "process_first" in p.get("cpu_s", {})
                and "process_drained" in p["cpu_s"]]
    if not with_cpu or elapsed <= 0:
        return {}
    per_pid: dict[int, list[dict[str, float]]] = {}
    for p in with_cpu:
        per_pid.setdefault(p["pid"], []).append(p["cpu_s"])
    ours = sum(max(c["process_drained"] for c in cs) - min(c["process_first"] for c in cs)
               for cs in per_pid.values())
    out = {"dataflow_cores": round(ours / elapsed, 2),
           "dataflow_cpu_us_per_event": round(ours / msgs * 1e6, 2) if msgs else 0.0}
    first = min(with_cpu, key=lambda p: p["first_t"])["cpu_s"]
    last = max(with_cpu, key=lambda p: p["drained_t"] or p["last_t"])["cpu_s"]
    if "broker_first" in first and "broker_drained" in last:
        out["broker_cores"] = round((last["broker_drained"] - first["broker_first"]) / elapsed, 2)
    return out


@dataclass
class Child:
    """A running twinguard.benchmarks.run_child process and where it reports."""

    name: str
    proc: subprocess.Popen[bytes]
    stats_dir: Path
    ready: Path
    done: Path | None
    topics: dict[str, str]
    log_path: Path
    t0: float = field(default_factory=time.monotonic)

    def wait_ready(self, timeout_s: float = 300) -> float:
        """Seconds from launch until the source first polled (warm-up + Bytewax start)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"consuming; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not consuming after {timeout_s} s")
            time.sleep(0.05)
        return time.monotonic() - self.t0

    def finish(self, timeout_s: float) -> dict[str, Any]:
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{self.name} did not finish in {timeout_s:.0f} s (killed); "
                               f"see {self.log_path}") from None
        if rc != 0:
            raise RuntimeError(f"{self.name} exited with {rc}; see {self.log_path}")
        out = aggregate_stats(self.stats_dir)
        out["process_wall_s"] = round(time.monotonic() - self.t0, 2)
        return out


def start_child(brokers: str, topic: str, name: str, logdir: Path, partitions: int,
                config_path: str | None, idle_s: float, paced: bool = False,
                extra_env: dict[str, str] | None = None) -> Child:
    out_topics = broker.output_topics(brokers, name, partitions)
    stats = logdir / name
    stats.mkdir(parents=True, exist_ok=True)
    ready, done = stats / "ready", (stats / "producer-done" if paced else None)
    cmd = [PYTHON, "-m", "twinguard.benchmarks.run_child", "--stats", str(stats), "--idle", str(idle_s),
           "--ready", str(ready)]
    if done is not None:
        cmd += ["--done", str(done)]
    log_path = logdir / f"{name}.log"
    with log_path.open("wb") as lf:
        proc = subprocess.Popen(cmd, env=child_env(brokers, topic, out_topics, config_path, extra_env),
                                stdout=lf, stderr=subprocess.STDOUT)
    return Child(name, proc, stats, ready, done, out_topics, log_path)


def accounting(brokers: str, topics: dict[str, str], expected: int) -> dict[str, Any]:
    """Every input message must be folded into a twin (latest version per device) or dead-lettered."""
    latest: dict[bytes | None, tuple[int, int]] = {}
    for r in broker.read_records(brokers, topics["twins"]):
        v = int(json.loads(r.value)["version"])
        prev = latest.get(r.key)
        if prev is None or v >= prev[0]:
            latest[r.key] = (v, r.offset)
    processed = sum(v for v, _ in latest.values())
    dead = len(broker.read_records(brokers, topics["deadletter"]))
    return {"expected": expected, "processed_in_twins": processed, "dead_letters": dead,
            "all_accounted": processed + dead == expected}


def threats(brokers: str, topics: dict[str, str]) -> list[tuple[dict[str, Any], int, int]]:
    """(threat JSON, Kafka timestamp ms, timestamp type) of every threat record."""
    return [(json.loads(r.value), r.timestamp_ms, r.timestamp_type)
            for r in broker.read_records(brokers, topics["threats"])]


def detection(found: list[tuple[dict[str, Any], int, int]], w: Workload) -> dict[str, Any]:
    s = evaluate([t for t, _, _ in found], w.labels, w.device_ids).summary()
    keep = ("attacks", "detected", "detected_right_class", "false_alarms", "normal_devices",
            "normal_devices_alarmed", "per_class",
            # event-time delay of the detector itself (window_end - attack start), if reported
            "time_to_detect_ms_median", "detected_within_2s")
    return {k: s[k] for k in keep if k in s}


def _matches(t: dict[str, Any], lab: AttackLabel) -> tuple[bool, bool]:
    """(matches the attack, with its class) by twinguard.pipelines.evaluation.match's own rule, applied to one
    threat, so latency and the detection counts always agree on what detected an attack."""
    res = evaluate([t], [lab], {lab.device_id}).attacks[0]
    return res.detected, res.right_class


def _pct(xs: list[int]) -> dict[str, Any]:
    fx = [float(x) for x in xs]
    return {"n": len(xs), **{f"p{q}": round(percentile(fx, q)) if xs else None
                             for q in (50, 95, 99)}, "max": max(xs) if xs else None}


def _stages(t: dict[str, Any], append_ms: int, start: int | None = None) -> dict[str, int]:
    """Where one threat's latency went (ms): the detector's evidence wait in event time (window
    end - attack start), the engine behind event time (detected_at - window end) and the sink
    (broker append - detected_at). Paced runs send at event time, so the clocks are comparable."""
    out = {"engine_ms": int(t["detected_at"]) - int(t["window_end"]),
           "sink_ms": append_ms - int(t["detected_at"])}
    if start is not None:
        out["evidence_ms"] = int(t["window_end"]) - start
    return out


def _closed(t: dict[str, Any], window_ms: int) -> bool:
    """A threat from a whole window (closed), not an early row (the window so far)."""
    return int(t["window_end"]) - int(t["window_start"]) >= window_ms


def latencies(found: list[tuple[dict[str, Any], int, int]], labels: list[AttackLabel],
              window_ms: int = 10_000) -> dict[str, Any]:
    by_dev: dict[str, list[tuple[dict[str, Any], int, int]]] = {}
    for rec in found:
        by_dev.setdefault(str(rec[0]["device_id"]), []).append(rec)
    right, anyc = [], []
    attacks: list[dict[str, Any]] = []  # per detected attack: its first right-class threat
    for lab in labels:
        hits = [(t, ts, _matches(t, lab)) for t, ts, _ in by_dev.get(lab.device_id, [])]
        seen = [ts for _, ts, (hit, _) in hits if hit]
        if seen:
            anyc.append(min(seen) - lab.start)
        ok = [(ts, t) for t, ts, (_, right_class) in hits if right_class]
        if ok:
            ts, t = min(ok, key=lambda x: x[0])
            right.append(ts - lab.start)
            attacks.append({"threat": lab.threat, "device_id": lab.device_id,
                            "latency_ms": ts - lab.start, "closed_window": _closed(t, window_ms),
                            "detectors": t.get("detectors", []),
                            **_stages(t, ts, lab.start)})
    after_end = [ts - int(t["window_end"]) for t, ts, _ in found]
    types = sorted({tt for _, _, tt in found})
    stages = [_stages(t, ts) | {"closed": _closed(t, window_ms)} for t, ts, _ in found]

    def split(key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"all": _pct([r[key] for r in rows]),
                "early_rows": _pct([r[key] for r in rows if not r["closed"]]),
                "closed_windows": _pct([r[key] for r in rows if r["closed"]])}

    per_class: dict[str, Any] = {}
    for c in sorted({a["threat"] for a in attacks}):
        mine = [a for a in attacks if a["threat"] == c]
        per_class[c] = {"latency_ms": _pct([a["latency_ms"] for a in mine]),
                        "closed_window": sum(a["closed_window"] for a in mine),
                        **{f"{k}_p50": round(percentile([float(a[k]) for a in mine], 50))
                           for k in ("evidence_ms", "engine_ms", "sink_ms")}}
    return {"right_class": _pct(right), "any_class": _pct(anyc),
            "append_minus_window_end": _pct(after_end),
            # every threat: engine = detected_at - window_end, sink = append - detected_at
            "threat_engine_ms": split("engine_ms", stages),
            "threat_sink_ms": split("sink_ms", stages),
            # the first right-class threat of each detected attack, by stage and by class
            "attack_stages_ms": {k: _pct([a[k] for a in attacks])
                                 for k in ("evidence_ms", "engine_ms", "sink_ms")},
            "attacks_by_closed_window": sum(a["closed_window"] for a in attacks),
            "per_class": per_class,
            "samples_right_class_ms": sorted(right),
            "attacks": attacks,
            "kafka_timestamp_types": types}


def throughput(brokers: str, w: Workload, n_trials: int, logdir: Path, partitions: int,
               config_path: str | None, profile_s: float, profile_out: Path) -> dict[str, Any]:
    topic = broker.input_topic(brokers, "bench.e2e.telemetry", partitions)
    log(f"e2e: producing {len(w):,} messages to {topic}")
    produce_s = broker.produce(brokers, topic, w.keys, w.values)
    n = broker.message_count(brokers, topic)
    if n != len(w):
        raise RuntimeError(f"{topic} holds {n} messages, produced {len(w)}")
    timeout = 120 + len(w) / 2000
    log("e2e: warm-up run (profiled with py-spy)")
    warm = start_child(brokers, topic, "e2e-warm", logdir, partitions, config_path, idle_s=3)
    warm.wait_ready()
    spy = profiling.record(warm.proc.pid, profile_s, profile_out)
    warm_res = warm.finish(timeout)
    spy_err = _finish_spy(spy)
    runs, samples = [], []
    first: Child | None = None
    for i in range(n_trials):
        c = start_child(brokers, topic, f"e2e-t{i + 1}", logdir, partitions, config_path, idle_s=3)
        c.wait_ready()
        res = c.finish(timeout)
        if res["messages"] != len(w):
            raise RuntimeError(f"e2e trial {i + 1} consumed {res['messages']} of {len(w)}")
        runs.append(res)
        samples.append(res["events_per_s"])
        first = first or c
        log(f"e2e: trial {i + 1}/{n_trials}: {res['events_per_s']:,.0f} ev/s "
            f"({res['messages']:,} messages in {res['elapsed_s']} s)")
    assert first is not None
    found = threats(brokers, first.topics)
    return {"topic": topic, "messages": len(w), "produce_s": round(produce_s, 2),
            "events_per_s": Stat(samples).as_dict(0), "trials": runs,
            "warmup_trial": warm_res, "profile_error": spy_err,
            "accounting": accounting(brokers, first.topics, len(w)),
            "detection": detection(found, w),
            "definition": "input messages / (last partition drained - first message in hand), "
                          "consumer-side clock inside the dataflow process; 1 Bytewax worker, "
                          f"{partitions} partitions, recovery off"}


def _finish_spy(spy: subprocess.Popen[bytes] | None) -> str | None:
    if spy is None:
        return "py-spy not installed"
    try:
        _, err = spy.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        spy.kill()
        return "py-spy did not finish"
    return None if spy.returncode == 0 else err.decode(errors="replace")[-300:]


def pace(brokers: str, topic: str, w: Workload) -> dict[str, Any]:
    """Produce each message once the wall clock reaches its send time; how late sends were."""
    p = producer(broker.settings(brokers))
    errors: list[str] = []

    def cb(err: Any, _m: Any) -> None:
        if err is not None:
            errors.append(err.str())

    ts, keys, values = w.ts_ms, w.keys, w.values
    lags: list[float] = []
    i, n = 0, len(values)
    while i < n:
        now = int(time.time() * 1000)
        j = int(np.searchsorted(ts, now, side="right"))
        if j <= i:
            time.sleep(min(max(int(ts[i]) - now, 0) / 1000.0, 0.005))
            continue
        lags.append(float(now - int(ts[i])))
        for k in range(i, j):
            while True:
                try:
                    p.produce(topic, values[k], keys[k], on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
        i = j
    left = p.flush(120)
    if left or errors:
        raise RuntimeError(f"paced produce: {left} undelivered, errors {errors[:3]}")
    return {"send_lag_ms": {"p50": round(percentile(lags, 50)), "p99": round(percentile(lags, 99)),
                            "max": round(max(lags)) if lags else None}}


def latency(brokers: str, rt: Runtime, max_rate: float, per_device_rate: float, gen_rate: float,
            duration_s: float, logdir: Path, partitions: int, config_path: str | None,
            fixed_rate: float | None = None) -> dict[str, Any]:
    target = fixed_rate or max_rate / 2
    devices = max(20, round(target / per_device_rate))
    topic = broker.input_topic(brokers, "bench.latency.telemetry", partitions)
    log(f"e2e latency: {devices} devices at nominal rates = ~{target:,.0f} ev/s paced for "
        f"{duration_s:.0f} s")
    child = start_child(brokers, topic, "e2e-latency", logdir, partitions, config_path,
                        idle_s=5, paced=True)
    est_gen = devices * per_device_rate * duration_s / max(gen_rate, 1.0)
    start_ms = int((time.time() + 1.5 * est_gen + 8) * 1000)
    w = generate(rt, devices, duration_s, seed=11, start_ms=start_ms)
    ready_s = child.wait_ready()
    late_ms = int(time.time() * 1000) - start_ms
    sent = pace(brokers, topic, w)
    assert child.done is not None
    child.done.touch()
    res = child.finish(300 + duration_s)
    found = threats(brokers, child.topics)
    lat = latencies(found, w.labels, rt.cfg.pipeline.window_ms)
    rows = logdir / "e2e-latency-attacks.jsonl"  # per detected attack, for a closer look
    rows.write_text("".join(json.dumps(a) + "\n" for a in lat.pop("attacks")))
    log(f"e2e latency: p50/p95/p99 = {lat['right_class']['p50']}/{lat['right_class']['p95']}/"
        f"{lat['right_class']['p99']} ms over {lat['right_class']['n']} detected attacks")
    return {"target_rate": round(target), "devices": devices, "workload": w.describe(),
            "producer": {**sent, "started_late_ms": max(late_ms, 0)}, "child_ready_s": ready_s,
            "run": res, "latency_ms": lat, "detection": detection(found, w),
            "accounting": accounting(brokers, child.topics, len(w)),
            "definition": "broker LogAppendTime of the first right-class threat matching the "
                          "attack - event time (ts) of the attack's first message; paced "
                          "production at " + (f"a fixed {fixed_rate:,.0f} ev/s (--latency-rate)"
                                              if fixed_rate else "half the sustained rate")
                          + ", devices at nominal rates"}
