"""Response suite (`twinguard bench --suite respond`): how fast an attack is acted on, and how many
actions per second the respond service puts through its policy and blast-radius guard.

Attack to action: a fresh simulated fleet, paced to event time (like the e2e latency run, whose
child dataflow and paced producer it reuses), goes through the production dataflow with dry run
off; `twinguard respond`'s service loop executes the actions it issues. Per attack, latency = the
`succeeded` record of the first action on the attacked device for the attack's threat class (they
carry it) - event time of the attack's first message (its label start); split into detection
(action issued - attack start), the service (execution started - issued) and the actuator
(succeeded - started). Every action is routed to the Kafka command-topic actuator (a gateway's
acknowledged command): this measures twinguard, not an MQTT broker or a SOAR tool. The guard is
opened, rate limits lifted and every tier set to auto so that nothing waits on purpose (the
automated path is what is timed); life-critical types still wait for an analyst and are counted,
not timed.

Then benchmarks/respond_latency.py: action -> executed latency at a paced rate, and actions/s
through the guard for bursts (median of trials). Load average is recorded before and after each
part: on a shared machine, numbers measured under load say so.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twinguard.benchmarks import broker, e2e_suite, respond_latency
from twinguard.benchmarks.harness import loadavg, log, percentile
from twinguard.benchmarks.workload import generate
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.respond.service import read_results, serve
from twinguard.pipelines.respond.settings import RespondConfig
from twinguard.schemas.messages import ActionResult

RESPOND_TOPICS = ("action_results", "action_decisions", "commands")


def run(rt: Runtime, devices: int, duration_s: float, paced: int, burst: int, trials: int,
        logdir: Path, partitions: int, config_path: str | None) -> dict[str, Any]:
    """Both parts on one private broker."""
    with broker.private_broker() as brokers:
        out: dict[str, Any] = {"loadavg_at_start": loadavg()}
        out["attack_to_action"] = attack_to_action(brokers, rt, devices, duration_s, logdir,
                                                   partitions, config_path)
        log(f"respond: action -> executed at a paced rate, then {trials} bursts of {burst}")
        out["through_the_guard"] = respond_latency.run(brokers, paced, 20.0, burst, trials)
        out["loadavg_at_end"] = loadavg()
        return out


def _respond_config(brokers: str, topics: dict[str, str], config_path: str | None) -> Config:
    base = load_config(config_path)
    routes = dict.fromkeys(RespondConfig().routes, "commands")
    auto = dict.fromkeys(routes, "auto")
    return base.replace(kafka={"brokers": brokers}, topics=topics, response={"dry_run": False},
                        respond={"group_id": f"bench-{topics['actions']}", "routes": routes,
                                 "tiers": auto, "unknown_type_tier": "auto",
                                 "guard_max_devices": 10**9, "guard_max_type_share": 1.0,
                                 "ttl_s": 3600.0, "rate_per_min": {"commands": str(10**9)}})


def attack_to_action(brokers: str, rt: Runtime, devices: int, duration_s: float, logdir: Path,
                     partitions: int, config_path: str | None) -> dict[str, Any]:
    load_before = loadavg()
    telemetry = broker.input_topic(brokers, "bench.respond.telemetry", partitions)
    child = e2e_suite.start_child(brokers, telemetry, "respond-e2e", logdir, partitions, config_path,
                                  idle_s=5, paced=True,
                                  env={"TWINGUARD__RESPONSE__DRY_RUN": "false"})
    topics = {**child.topics, **{r: broker.input_topic(brokers, f"bench.respond-e2e.{r}", partitions)
                                 for r in RESPOND_TOPICS}}
    cfg = _respond_config(brokers, topics, config_path)
    stop = threading.Event()
    service = threading.Thread(target=serve, args=(cfg, stop), name="respond", daemon=True)
    service.start()
    # the fleet starts once the dataflow and the service are up (generation time estimated as the
    # e2e latency run does): its event time is the wall clock, so the two clocks compare
    start_ms = int((time.time() + 20) * 1000)
    w = generate(rt, devices, duration_s, seed=13, start_ms=start_ms)
    log(f"respond: {devices} devices, {len(w.labels)} attacks, paced for {duration_s:.0f} s")
    child.wait_ready()
    sent = e2e_suite.pace(brokers, telemetry, w)
    assert child.done is not None
    child.done.touch()
    run = child.finish(300 + duration_s)
    try:
        latest = _settled(cfg, timeout_s=120)
    finally:
        stop.set()
        service.join(60)
    attacks = _per_attack(latest, w.labels)
    rows = logdir / "respond-attacks.jsonl"
    rows.write_text("".join(json.dumps(a) + "\n" for a in attacks))
    timed = [a for a in attacks if "latency_ms" in a]
    res: dict[str, Any] = {"devices": devices, "duration_s": duration_s, "attacks": len(w.labels),
           "attacks_acted_on": len(timed),
           "latency_ms": _pct([a["latency_ms"] for a in timed]),
           "stages_ms": {k: _pct([a[k] for a in timed])
                         for k in ("detect_ms", "service_ms", "actuator_ms")},
           "actions_by_final_status": dict(Counter(
               r.status + (f" ({r.hold})" if r.hold else "") for r in latest.values())),
           "producer": sent, "run": {k: run.get(k) for k in ("messages", "events_per_s", "cpu")},
           "loadavg_before": load_before, "loadavg_after": loadavg(),
           "definition": "succeeded record of the first action on the attacked device for the "
                         "attack's threat class - event time of the attack's first message; "
                         "telemetry paced to event time, all actions routed to the commands "
                         "actuator, tiers auto, guard opened; life-critical devices' actions "
                         "wait for an analyst and are not timed"}
    log(f"respond: attack -> action executed p50/p99 = {res['latency_ms']['p50']}/"
        f"{res['latency_ms']['p99']} ms over {len(timed)} of {len(w.labels)} attacks")
    return res


def _settled(cfg: Config, timeout_s: float) -> dict[str, ActionResult]:
    """The latest record per action once none has changed for a few seconds (or at the deadline)."""
    settings = cfg.kafka.client_settings()
    deadline, last, quiet_since = time.monotonic() + timeout_s, -1, time.monotonic()
    latest: dict[str, ActionResult] = {}
    while time.monotonic() < deadline:
        recs = read_results(settings, cfg.topics.action_results)
        latest = {r.action_id: r for r in recs}
        busy = any(r.status == "in_progress" for r in latest.values())
        if len(recs) != last or busy:
            last, quiet_since = len(recs), time.monotonic()
        elif time.monotonic() - quiet_since > 5:
            break
        time.sleep(1.0)
    return latest


def _per_attack(latest: dict[str, ActionResult], labels: list[Any]) -> list[dict[str, Any]]:
    by_device: dict[str, list[ActionResult]] = {}
    for r in latest.values():
        by_device.setdefault(r.request.device_id, []).append(r)
    out = []
    for lab in labels:
        mine = [r for r in by_device.get(lab.device_id, []) if r.request.threat == lab.threat
                and r.request.issued_at >= lab.start]
        row: dict[str, Any] = {"device_id": lab.device_id, "threat": lab.threat,
                               "actions": len(mine)}
        done = [r for r in mine if r.executed_at is not None and r.status in ("succeeded", "reverted")]
        if done:
            first = min(done, key=lambda r: r.executed_at or 0)
            ok_at = first.at if first.status == "succeeded" else first.executed_at or first.at
            row.update(action=first.performs, latency_ms=ok_at - lab.start,
                       detect_ms=first.request.issued_at - lab.start,
                       service_ms=(first.executed_at or 0) - first.request.issued_at,
                       actuator_ms=ok_at - (first.executed_at or 0))
        else:
            row["held"] = sorted({r.status + (f" ({r.hold})" if r.hold else "") for r in mine})
        out.append(row)
    return out


def _pct(xs: list[int]) -> dict[str, Any]:
    fx = [float(x) for x in xs]
    return {"n": len(xs), **{f"p{q}": round(percentile(fx, q)) if xs else None for q in (50, 99)},
            "max": max(xs) if xs else None}


def markdown(res: dict[str, Any]) -> list[str]:
    """The results.md section."""
    a, g = res.get("attack_to_action", {}), res.get("through_the_guard", {})
    lat, st = a.get("latency_ms", {}), a.get("stages_ms", {})
    lines = ["", "## Response (attack -> action executed)", "", str(a.get("definition", "")) + ".", "",
             f"- attack -> action executed: p50 **{lat.get('p50')} ms**, p99 **{lat.get('p99')} ms** "
             f"over {lat.get('n')} of {a.get('attacks')} attacks ({a.get('devices')} devices)",
             f"- stages p50: detection {st.get('detect_ms', {}).get('p50')} ms, service "
             f"{st.get('service_ms', {}).get('p50')} ms, actuator {st.get('actuator_ms', {}).get('p50')} ms",
             f"- actions by final status: {a.get('actions_by_final_status')}",
             f"- action -> executed at {g.get('paced_rate_per_s')}/s: p50 {_ms(g.get('latency_p50_ms'))}"
             f", p99 {_ms(g.get('latency_p99_ms'))}",
             f"- through the guard: **{_num(g.get('burst_actions_per_s'))} actions/s** (median of "
             f"{len(g.get('burst_trials', []))} bursts of {g.get('burst_actions')})",
             f"- load average at start {res.get('loadavg_at_start')}, at end {res.get('loadavg_at_end')}"]
    return lines


def _ms(v: Any) -> str:
    return f"{v:.0f} ms" if isinstance(v, int | float) else "-"


def _num(v: Any) -> str:
    return f"{v:,.0f}" if isinstance(v, int | float) else "-"
