"""Memory suite: twin state per device at 10k / 100k / 1M devices, no Kafka.

Each size runs in a fresh process (`python -m twinguard.benchmarks.memory --devices N`) so the RSS delta is
not polluted by earlier sizes. Synthetic devices (distinct ids, firmware and source-IP strings as
decoding would create) are folded through ShardEngine in columnar batches: one event per device,
then a second one a window later, so every device has closed a window (ring, baselines, twins).
Reported: TwinStore.nbytes() / devices (arrays as allocated, growth slack included), the bytes of
one array slot (what a device needs), and the process RSS delta per device (arrays + Python
objects: index dict, id/firmware/IP strings).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from twinguard.benchmarks.harness import PYTHON, log, rss_bytes
from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.integrity.signatures import SIG_OK
from twinguard.operators.twin.engine import ShardEngine
from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import Runtime
from twinguard.schemas.device_types import MAX_SIGNALS

CHUNK = 100_000


def _batch(rt: Runtime, ids: list[str], first: int, ts: int) -> TelemetryBatch:
    n = len(ids)
    t = rt.types
    type_idx = (np.arange(first, first + n) % len(t)).astype(np.int64)
    mid = (t.lo + t.hi) / 2.0
    signals = np.full((n, MAX_SIGNALS), np.nan)
    for k in range(MAX_SIGNALS):
        have = t.n_signals[type_idx] > k
        signals[have, k] = mid[type_idx[have], k]
    shard = np.array([zlib.crc32(d.encode()) % rt.decode.shards for d in ids], dtype=np.int64)
    ints = np.zeros(n, dtype=np.int64)
    return TelemetryBatch(
        device_ids=ids, src_ips=[f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
                                 for i in range(first, first + n)],
        dst_ips=[None] * n, principals=[None] * n,
        fws=[f"1.{i % 7}.{i % 3}" for i in range(first, first + n)],
        shard=shard, type_idx=type_idx, ts=np.full(n, ts, dtype=np.int64),
        seq=np.full(n, ts // 10_000, dtype=np.int64), signals=signals,
        bytes_in=np.full(n, 80.0), bytes_out=np.full(n, 200.0), conns=np.ones(n),
        auth_fail=np.zeros(n), auth_ok=np.zeros(n), dst_port=np.full(n, 8883, dtype=np.int64),
        src_hash=ints + 7, dst_hash=ints.copy(), princ_hash=ints.copy(),
        sig_state=np.full(n, SIG_OK, dtype=np.int64), fw_unknown=ints.copy(), partition=ints.copy(),
        offset=np.arange(first, first + n, dtype=np.int64))


def measure(devices: int) -> dict[str, Any]:
    rt = Runtime.from_config(load_config())
    warm: dict[int, ShardEngine] = {}
    _fill(rt, warm, [f"warm-{i}" for i in range(100)], 0)  # Numba + model loaded before RSS0
    del warm
    gc.collect()
    rss0 = rss_bytes()
    engines: dict[int, ShardEngine] = {}
    ids = [f"device-{i:08d}" for i in range(devices)]
    _fill(rt, engines, ids, 0)
    gc.collect()
    rss1 = rss_bytes()
    stores = [e.store for e in engines.values()]
    size = sum(s.size for s in stores)
    nbytes = sum(s.nbytes() for s in stores)
    slot = sum(v[:1].nbytes for v in stores[0].arrays.values())
    peer = sum(s.peer.nbytes + s.peer_n.nbytes for s in stores)
    return {"devices": devices, "shards": len(stores), "devices_in_stores": size,
            "store_nbytes": nbytes, "bytes_per_device": round(nbytes / size, 1),
            "slot_bytes": slot, "capacity": sum(s.capacity for s in stores),
            "per_shard_peer_bytes": peer // max(len(stores), 1),
            "rss_delta_bytes": rss1 - rss0, "rss_delta_per_device": round((rss1 - rss0) / size, 1)}


def _fill(rt: Runtime, engines: dict[int, ShardEngine], ids: list[str], t0: int) -> None:
    base = 1_700_000_000_000 + t0
    for rnd in range(2):  # second event one window later: every device closes a window
        for i in range(0, len(ids), CHUNK):
            b = _batch(rt, ids[i:i + CHUNK], i, base + rnd * rt.engine.pipeline.window_ms)
            for shard, part in b.split_by_shard():
                eng = engines.get(shard)
                if eng is None:
                    eng = engines[shard] = ShardEngine.fresh(rt.engine)
                eng.process(part)


def run(sizes: list[int], logdir: Path) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for n in sizes:
        log(f"memory: {n:,} devices")
        lp = logdir / f"memory-{n}.log"
        with lp.open("wb") as lf:
            proc = subprocess.run([PYTHON, "-m", "twinguard.benchmarks.memory", "--devices", str(n)],
                                  stdout=subprocess.PIPE, stderr=lf, timeout=1800,
                                  check=False)
        if proc.returncode != 0:
            out.append({"devices": n, "error": f"exit {proc.returncode}; see {lp}"})
            continue
        res = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        log(f"memory: {n:,} devices: {res['bytes_per_device']} B/device in arrays "
            f"(slot {res['slot_bytes']} B), RSS +{res['rss_delta_per_device']} B/device")
        out.append(res)
    ok = [r for r in out if "error" not in r]
    largest = max(ok, key=lambda r: r["devices"]) if ok else None
    return {"sizes": out,
            "bytes_per_device": largest["bytes_per_device"] if largest else None,
            "bytes_per_device_max_over_sizes": max((r["bytes_per_device"] for r in ok),
                                                   default=None),
            "rss_delta_per_device_at_largest": largest["rss_delta_per_device"] if largest else None,
            "definition": "TwinStore.nbytes() summed over the shard stores / devices (numpy arrays "
                          "as allocated, including growth slack); headline at the largest size"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, required=True)
    a = ap.parse_args()
    print(json.dumps(measure(a.devices)))


if __name__ == "__main__":
    main()
