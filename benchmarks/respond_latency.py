"""Response benchmark on a real broker: action-to-executed latency p50/p99 at a paced rate, and
actions/s through the policy, the blast-radius guard and the commands actuator for a burst (median
of `trials` bursts, with the process CPU seconds each took and the load average around it).

`python -m twinguard.benchmarks.respond_latency --brokers HOST:PORT` (e.g. inside
deploy/kafka/with-broker.sh); it creates and deletes its own topics. `twinguard bench --suite
respond` runs it after the attack-to-action measurement (benchmarks/respond_suite.py).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import msgspec
import numpy as np

from twinguard.benchmarks.harness import Stat, loadavg
from twinguard.operators.detect.policy import output_id
from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.kafka import admin
from twinguard.pipelines.respond.service import serve
from twinguard.schemas.messages import Action, ActionResult, TwinState


def _actions(prefix: str, n: int) -> list[Action]:
    now = int(time.time() * 1000)
    return [Action(id=output_id(prefix, str(i)), threat_id=output_id(prefix, "t", str(i)),
                   device_id=f"thermostat-{i:06d}", action="failsafe", target=f"thermostat-{i:06d}",
                   tier="auto", dry_run=False, reason="bench", issued_at=now) for i in range(n)]


_PRODUCERS: dict[str, Any] = {}


def _send(cfg: Config, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Produce and wait for acknowledgement, on one long-lived producer (a new one needs ~0.5 s
    to connect, which would count as response latency)."""
    p = _PRODUCERS.setdefault(cfg.kafka.brokers, producer(cfg.kafka.client_settings()))
    errors: list[str] = []
    produce_all(p, topic, items, errors.append)
    if p.flush(30) or errors:
        raise RuntimeError(f"producing to {topic} failed: {errors[:3]}")


def _done(cfg: Config) -> dict[str, ActionResult]:
    dec = msgspec.json.Decoder(ActionResult)
    out = {}
    for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.action_results):
        r = dec.decode(v)
        if r.status == "succeeded":
            out[r.action_id] = r
    return out


def _wait(cfg: Config, ids: set[str], timeout_s: float) -> dict[str, ActionResult]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = _done(cfg)
        if ids <= done.keys():
            return {i: done[i] for i in ids}
        print(f"  {len(ids & done.keys())}/{len(ids)} executed", flush=True)
        time.sleep(1.0)
    raise TimeoutError(f"not every action executed within {timeout_s} s")


def run(brokers: str, paced: int, rate: float, burst: int, trials: int = 1) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    base = load_config()
    cfg = base.replace(kafka={"brokers": brokers},
                       topics={**{r: f"{n}.bench-{suffix}" for r, n in base.topics.all().items()},
                               "partitions": 2},
                       response={"dry_run": False},
                       respond={"group_id": f"bench-{suffix}", "guard_max_devices": 10**9,
                                "guard_max_type_share": 1.0, "ttl_s": 3600.0,
                                "rate_per_min": {"commands": str(10**9)}})
    settings = cfg.kafka.client_settings()
    admin.create_topics(settings, admin.topic_specs(cfg))
    stop = threading.Event()
    service = threading.Thread(target=serve, args=(cfg, stop), daemon=True)
    try:
        n = max(paced, burst)
        now = int(time.time() * 1000)
        twins = [(f"thermostat-{i:06d}".encode(), msgspec.json.encode(TwinState(
            device_id=f"thermostat-{i:06d}", device_type="thermostat", version=1, last_seen=now, seq=1,
            fw=None, src_ip=None, reported={}, status="normal", threats_total=0, last_threat=None,
            baseline_windows=3, updated_at=now))) for i in range(n)]
        _send(cfg, cfg.topics.twins, twins)
        service.start()
        warm = _actions(f"warm-{suffix}", 1)
        _send(cfg, cfg.topics.actions, [(a.device_id.encode(), msgspec.json.encode(a)) for a in warm])
        _wait(cfg, {a.id for a in warm}, 120)
        print(f"paced: {paced} actions at {rate:g}/s", flush=True)
        paced_ids: set[str] = set()
        issued: dict[str, int] = {}
        for i in range(paced):
            a = msgspec.structs.replace(_actions(f"paced-{suffix}-{i}", 1)[0], issued_at=int(
                time.time() * 1000), device_id=f"thermostat-{i:06d}", target=f"thermostat-{i:06d}")
            _send(cfg, cfg.topics.actions, [(a.device_id.encode(), msgspec.json.encode(a))])
            paced_ids.add(a.id)
            issued[a.id] = a.issued_at
            time.sleep(1.0 / rate)
        done = _wait(cfg, paced_ids, 300)
        lat = np.array([done[i].at - issued[i] for i in paced_ids], dtype=np.float64)
        # consumed and decided (the step is recorded) vs the actuator's own time
        to_start = np.array([(done[i].executed_at or 0) - issued[i] for i in paced_ids], dtype=np.float64)
        bursts = [_burst(cfg, f"burst-{suffix}-{t}", burst) for t in range(trials)]
        return {"paced_actions": paced, "paced_rate_per_s": rate,
                "latency_p50_ms": float(np.percentile(lat, 50)),
                "latency_p99_ms": float(np.percentile(lat, 99)),
                "to_start_p50_ms": float(np.percentile(to_start, 50)),
                "burst_actions": burst, "burst_trials": bursts,
                "burst_seconds": Stat([b["seconds"] for b in bursts]).median,
                "burst_actions_per_s": Stat([b["actions_per_s"] for b in bursts]).median}
    finally:
        stop.set()
        service.join(60)
        admin.delete_topics(settings, cfg.topics.all().values())
        p = _PRODUCERS.pop(cfg.kafka.brokers, None)
        if p is not None:  # before the broker goes: it would keep trying to reconnect
            p.flush(5)


def _burst(cfg: Config, prefix: str, n: int) -> dict[str, Any]:
    """`n` actions at once; seconds until the last one executed, and this process's CPU seconds
    meanwhile (the service's thread, plus this benchmark polling the results topic)."""
    print(f"burst: {n} actions at once", flush=True)
    acts = _actions(prefix, n)
    load, cpu0 = loadavg(), time.process_time()
    _send(cfg, cfg.topics.actions, [(a.device_id.encode(), msgspec.json.encode(a)) for a in acts])
    sent_at = time.time() * 1000
    got = _wait(cfg, {a.id for a in acts}, 600)
    span_s = (max(r.at for r in got.values()) - sent_at) / 1000
    return {"seconds": round(span_s, 3), "actions_per_s": n / span_s if span_s > 0 else float("inf"),
            "cpu_s": round(time.process_time() - cpu0, 2), "loadavg_before": load,
            "loadavg_after": loadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="Kafka bootstrap servers")
    p.add_argument("--paced", type=int, default=200, help="actions for the latency run (default 200)")
    p.add_argument("--rate", type=float, default=20.0, help="their rate per second (default 20)")
    p.add_argument("--burst", type=int, default=1000, help="actions for the throughput run")
    p.add_argument("--trials", type=int, default=3, help="bursts (the median counts; default 3)")
    args = p.parse_args()
    print(json.dumps(run(args.brokers, args.paced, args.rate, args.burst, args.trials), indent=2))


if __name__ == "__main__":
    main()
