"""Issue 15 item 6a: a benign fleet-wide change the current model flags, silenced by feedback.

A simulated fleet without attacks runs live (paced to event time) through `twinguard run` on a
broker; from `--rollout-at` seconds on (staggered over `--spread` seconds) every device of one type
gets a new firmware that sends many times the bytes over more connections (benign: richer
telemetry). An analyst loop watches the
threats topic and, for each threat class the rolled-out type is alarmed with, gives `twinguard
feedback FIRST_ALARM --verdict benign --scope type` once it has seen `--first-alarms` of them. The
results: false alarms per minute on that type before and after the feedback, time from each verdict
to the last alarm of its class (time to silence), and how many alarms the suppression hid (the
twins' `suppressed_threats`), with the other types' alarm rate as the control.

`python -m twinguard.benchmarks.adapt_feedback --brokers HOST:PORT --out DIR` (e.g. inside
deploy/kafka/with-broker.sh); it creates and deletes its own topics.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from twinguard.benchmarks.adapt_live import (
    PacedFleet,
    bench_config,
    drop_topics,
    finish_run,
    records,
    rollout,
    start_run,
    twinguard,
    write_results,
)
from twinguard.benchmarks.harness import loadavg
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.fleet import SimConfig

MINUTE_MS = 60_000
BYTES_FACTOR, CONNS_FACTOR = 20.0, 8.0  # the new firmware's traffic vs the old


def _alarms(cfg: Config, dtype: str, since_ms: int) -> list[dict[str, Any]]:
    return sorted((t for t, _ in records(cfg, cfg.topics.threats)
                   if t["device_type"] == dtype and t["window_end"] >= since_ms),
                  key=lambda t: t["detected_at"])


def _per_minute(n: int, span_ms: int) -> float | None:
    return round(n / (span_ms / MINUTE_MS), 2) if span_ms > 0 else None


def run(brokers: str, out: Path, devices: int, duration_s: float, rollout_at_s: float,
        spread_s: float, first_alarms: int, dtype: str, scope: str, seed: int) -> Path:
    load_start = loadavg()
    cfg = bench_config(brokers, "feedback")
    try:
        fleet = PacedFleet(cfg, SimConfig(devices=devices, duration_s=duration_s, seed=seed,
                                          attack_fraction=0.0))
        at_ms = fleet.fleet.start_ms + int(rollout_at_s * 1000)
        fleet.transform = rollout(fleet.keys, dtype, at_ms, "5.55.1", bytes_factor=BYTES_FACTOR,
                                  conns_factor=CONNS_FACTOR, spread_ms=int(spread_s * 1000))
        log = out / "adapt_feedback.run.log"
        out.mkdir(parents=True, exist_ok=True)
        proc = start_run(cfg, log, until_idle=10)
        fleet.start()
        given: dict[str, tuple[str, int]] = {}  # threat class -> (threat id, verdict time)
        while fleet.is_alive():
            time.sleep(2.0)
            alarms = _alarms(cfg, dtype, at_ms)
            for cls in {t["threat"] for t in alarms} - given.keys():
                first = [t for t in alarms if t["threat"] == cls]
                if len(first) >= first_alarms or len(alarms) >= 3 * first_alarms:
                    r = twinguard(cfg, "feedback", first[0]["id"], "--verdict", "benign", "--scope",
                                  scope, "--ttl", "1h", "--note", "firmware 5.55.1 rollout")
                    if r.returncode != 0:
                        raise RuntimeError(f"twinguard feedback failed: {r.stderr.strip()}")
                    given[cls] = (first[0]["id"], int(time.time() * 1000))
                    print(f"feedback on {cls}: {r.stdout.strip()}", flush=True)
        fleet.join()
        end_ms = int(time.time() * 1000)  # the last telemetry was sent
        if fleet.error:
            raise RuntimeError(fleet.error)
        cpu_s = finish_run(proc, log)
        threats = [t for t, _ in records(cfg, cfg.topics.threats)]
        twins = {t["device_id"]: t for t, _ in records(cfg, cfg.topics.twins)}
        results = _measure(threats, twins, given, dtype, (at_ms, end_ms), fleet.sent)
        results.update(devices=devices, duration_s=duration_s, rollout_at_s=rollout_at_s,
                       rollout_spread_s=spread_s,
                       rollout_type=dtype, scope=scope, first_alarms=first_alarms, seed=seed,
                       run_cpu_s=round(cpu_s, 1), loadavg_at_start=load_start)
    finally:
        drop_topics(cfg)
    return write_results(out, "adapt_feedback", results, _summary(results))


def _measure(threats: list[dict[str, Any]], twins: dict[str, dict[str, Any]],
             given: dict[str, tuple[str, int]], dtype: str, span: tuple[int, int], sent: int
             ) -> dict[str, Any]:
    at_ms, end_ms = span
    ours = sorted((t for t in threats if t["device_type"] == dtype and t["window_end"] >= at_ms),
                  key=lambda t: t["detected_at"])
    others = [t for t in threats if t["device_type"] != dtype and t["window_end"] >= at_ms]
    first_fb = min((ts for _, ts in given.values()), default=end_ms)
    last_fb = max((ts for _, ts in given.values()), default=end_ms)
    before = [t for t in ours if t["detected_at"] < first_fb]
    after = [t for t in ours if t["detected_at"] >= last_fb]
    silence = {cls: round(max([t["detected_at"] - ts for t in ours
                               if t["threat"] == cls and t["detected_at"] >= ts] or [0]) / 1000, 1)
               for cls, (_, ts) in given.items()}
    hidden = sum(t.get("suppressed_threats", 0) for t in twins.values() if t["device_type"] == dtype)
    return {
        "telemetry_sent": sent, "twins": len(twins),
        "events_folded": sum(int(t["version"]) for t in twins.values()),
        "false_alarms_total": len(ours), "feedback_given": {c: i for c, (i, _) in given.items()},
        "alarms_per_min_before_feedback": _per_minute(len(before), first_fb - at_ms),
        "alarms_per_min_after_feedback": _per_minute(len(after), end_ms - last_fb),
        "seconds_to_silence": silence,
        "first_alarm_after_rollout_s": round((ours[0]["detected_at"] - at_ms) / 1000, 1) if ours else None,
        "suppressed_in_twins": hidden,
        "other_types_alarms_per_min": _per_minute(len(others), end_ms - at_ms),
        "by_class": {c: sum(1 for t in ours if t["threat"] == c) for c in {t["threat"] for t in ours}},
    }


def _summary(r: dict[str, Any]) -> list[str]:
    return [f"benign rollout on {r['rollout_type']} from {r['rollout_at_s']} s over "
            f"{r['rollout_spread_s']} s, {r['devices']} devices, "
            f"{r['duration_s']} s; feedback scope {r['scope']} on the first {r['first_alarms']} alarms "
            f"of each class: {sorted(r['feedback_given'])}",
            f"false alarms per minute on {r['rollout_type']}: {r['alarms_per_min_before_feedback']} "
            f"before feedback, {r['alarms_per_min_after_feedback']} after",
            f"seconds from each verdict to the last alarm of its class: {r['seconds_to_silence']}",
            f"alarms hidden by the suppression (twins' suppressed_threats): {r['suppressed_in_twins']}",
            f"telemetry sent {r['telemetry_sent']}, folded into twins {r['events_folded']}; "
            f"run CPU {r['run_cpu_s']} s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="Kafka bootstrap servers")
    p.add_argument("--out", required=True, help="results folder (adapt_feedback.json/.md)")
    p.add_argument("--devices", type=int, default=300)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of live telemetry")
    p.add_argument("--rollout-at", type=float, default=80.0, help="seconds in (after baselines)")
    p.add_argument("--spread", type=float, default=150.0,
                   help="the rollout reaches the type's devices over this many seconds")
    p.add_argument("--first-alarms", type=int, default=3,
                   help="alarms of a class the analyst waits for before the verdict (default 3)")
    p.add_argument("--type", default="ip_camera", help="the device type rolled out")
    p.add_argument("--scope", default="type", choices=("type", "cohort"))
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    run(a.brokers, Path(a.out), a.devices, a.duration, a.rollout_at, a.spread, a.first_alarms,
        a.type, a.scope, a.seed)


if __name__ == "__main__":
    main()
