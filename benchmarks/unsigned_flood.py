"""State an unsigned flood leaves behind: N messages under random device ids, no signature, through
the flow's decode and shard logics (no Kafka). `python -m twinguard.benchmarks.unsigned_flood
[--messages N]` prints twins kept, array and snapshot bytes, RSS growth and the outputs by topic.

Issue 18 measured 100,000 such messages as 100,000 twins plus a threat and an action each; a twin now
starts only with a device's first authentic message (operators/twin/identity.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import time
from collections import Counter

import numpy as np

from twinguard.benchmarks.harness import rss_bytes
from twinguard.operators.batches import RawBatch
from twinguard.operators.twin.logic import ShardLogic
from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import Runtime, by_shard, decode_step

BATCH = 2000


def messages(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """(key, value) of n unsigned thermostat reports, each from a new random device id."""
    rng = random.Random(seed)
    start = int(time.time() * 1000) - 60_000
    out = []
    for i in range(n):
        device = f"thermostat-{rng.getrandbits(40):x}"
        doc = {"device_id": device, "type": "thermostat", "ts": start + i, "seq": 1, "fw": "4.2.0",
               "signals": {"temperature_c": 21.0, "setpoint_c": 21.0, "humidity_pct": 45.0,
                           "heating": 0.0},
               "net": {"src_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                       "dst_ip": "10.0.0.10", "dst_port": 8883, "bytes_out": 200}}
        out.append((device.encode(), json.dumps(doc).encode()))
    return out


def flood(n: int) -> dict[str, object]:
    rt = Runtime.from_config(load_config(env={}))
    msgs = messages(n)
    shards: dict[str, ShardLogic] = {}
    outputs: Counter[str] = Counter()
    gc.collect()
    before = rss_bytes()
    for k in range(0, n, BATCH):
        part = msgs[k:k + BATCH]
        raw = RawBatch(rt.cfg.topics.telemetry, 0, np.arange(k, k + len(part)),
                       [key for key, _ in part], [value for _, value in part])
        decoded = decode_step(rt, raw)
        outputs.update(m.role for m in decoded.errs)
        for key, item in by_shard(rt.cfg.pipeline.shards, decoded):
            logic = shards.get(key) or shards.setdefault(key, ShardLogic(rt.engine, None, rt.control))
            outputs.update(m.role for m in logic.on_batch([item])[0])
    for logic in shards.values():
        outputs.update(m.role for m in logic.on_eof()[0])
    del msgs
    gc.collect()
    stores = [logic.engine.store for logic in shards.values()]
    return {"messages": n, "twins": sum(s.size for s in stores),
            "array_bytes": sum(s.nbytes() for s in stores),
            "snapshot_bytes": sum(len(pickle.dumps(s.snapshot())) for s in stores),
            "rss_growth_mb": round((rss_bytes() - before) / 2**20, 1), "outputs": dict(outputs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000, help="unsigned messages (default 100000)")
    print(json.dumps(flood(p.parse_args().messages)))


if __name__ == "__main__":
    main()
