"""Per-event features and scoring shared by the peers (stdlib + numpy + xgboost only).

A reasonable subset of twinguard's window features, computed per event in plain Python over a
10 s tumbling event-time window per device: count, rate vs nominal, bytes in/out, connections,
auth failures, distinct destination ports, per-signal mean/min/max (as position in the signal's
range and the minimum margin to its limits). Each event's current window is scored at once with the
shipped XGBoost model (`inplace_predict` on a 1-row matrix); features we do not compute are NaN
(XGBoost's missing value). The spec (feature names, device types, model path) is written by the
harness from the project's own schemas, so names and indices match the model.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

WINDOW_MS = 10_000
State = dict[str, Any]


class PeerModel:
    def __init__(self, spec_path: str | Path) -> None:
        import xgboost as xgb

        spec = json.loads(Path(spec_path).read_text())
        self.names: list[str] = spec["feature_names"]
        self.classes: list[str] = spec["classes"]
        self.threshold = float(spec["threshold"])
        self.types: dict[str, dict[str, Any]] = spec["types"]
        for t in self.types.values():
            t["index"] = {s: k for k, s in enumerate(t["signals"])}
        ix = {n: i for i, n in enumerate(self.names)}
        self.ix = ix
        self.sig_pos = [ix[f"sig{k}_pos"] for k in range(spec["max_signals"])]
        self.booster = xgb.Booster()
        self.booster.load_model(spec["model_path"])
        self.booster.set_param({"nthread": 1})

    # ---- per-event state (a plain dict: JSON-serialisable for Quix's state store)

    def fresh(self, ws: int, dtype: str) -> State:
        k = len(self.types[dtype]["signals"])
        return {"ws": ws, "type": dtype, "n": 0, "bin": 0.0, "bout": 0.0, "conns": 0.0,
                "auth": 0.0, "ports": [], "sn": [0] * k, "ssum": [0.0] * k,
                "smin": [math.inf] * k, "smax": [-math.inf] * k}

    def update(self, st: State | None, ev: dict[str, Any]) -> State:
        ts = int(ev["ts"])
        ws = ts - ts % WINDOW_MS
        if st is None or ws > st["ws"]:
            st = self.fresh(ws, ev["type"])
        st["n"] += 1
        net = ev.get("net") or {}
        st["bin"] += float(net.get("bytes_in") or 0.0)
        st["bout"] += float(net.get("bytes_out") or 0.0)
        st["conns"] += float(net.get("connections") or 0.0)
        st["auth"] += float((ev.get("auth") or {}).get("failures") or 0.0)
        port = net.get("dst_port")
        if port is not None and port not in st["ports"]:
            st["ports"].append(port)
        index = self.types[st["type"]]["index"]
        for name, v in (ev.get("signals") or {}).items():
            k = index.get(name)
            if k is None:
                continue
            st["sn"][k] += 1
            st["ssum"][k] += v
            st["smin"][k] = min(st["smin"][k], v)
            st["smax"][k] = max(st["smax"][k], v)
        return st

    def features(self, st: State) -> np.ndarray:
        t = self.types[st["type"]]
        ix = self.ix
        row = np.full((1, len(self.names)), np.nan, dtype=np.float32)
        f = row[0]
        f[ix["count_10s"]] = st["n"]
        f[ix["rate_ratio_10s"]] = st["n"] / (WINDOW_MS / 1000 * t["nominal_hz"])
        f[ix["log_bytes_out_10s"]] = math.log1p(st["bout"])
        f[ix["log_bytes_in_10s"]] = math.log1p(st["bin"])
        f[ix["out_in_log_ratio"]] = math.log1p(st["bout"]) - math.log1p(st["bin"])
        f[ix["conns_10s"]] = st["conns"]
        f[ix["distinct_ports_10s"]] = len(st["ports"])
        f[ix["auth_fail_10s"]] = st["auth"]
        margin = 1.0
        for k, n in enumerate(st["sn"]):
            if n == 0:
                continue
            lo, hi = t["lo"][k], t["hi"][k]
            span = hi - lo
            f[self.sig_pos[k]] = (st["ssum"][k] / n - lo) / span
            margin = min(margin, (st["smin"][k] - lo) / span, (hi - st["smax"][k]) / span)
        f[ix["sig_min_margin"]] = margin
        return row

    def score(self, row: np.ndarray) -> tuple[int, float]:
        p = self.booster.inplace_predict(row)[0]
        c = int(np.argmax(p))
        return c, float(p[c])

    def step(self, st: State | None, ev: dict[str, Any]) -> tuple[State, bytes | None]:
        """Fold one event in, score its device's current window; a threat record or None."""
        st = self.update(st, ev)
        c, p = self.score(self.features(st))
        if c == 0 or p < self.threshold:
            return st, None
        out = {"device_id": ev["device_id"], "threat": self.classes[c], "score": round(p, 4),
               "window_start": st["ws"], "window_end": st["ws"] + WINDOW_MS, "ts": ev["ts"]}
        return st, json.dumps(out).encode()


def peer_arguments(doc: str | None, idle: bool = False) -> argparse.Namespace:
    """The options the harness passes to every peer (and `--idle` for peers that end on silence)."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    for name in ("--spec", "--brokers", "--topic", "--out-topic", "--stats"):
        ap.add_argument(name, required=True)
    if idle:
        ap.add_argument("--idle", type=float, default=5.0, help="stop after this many idle seconds")
    return ap.parse_args()


def warm_model(spec_path: str | Path) -> PeerModel:
    """The model, with XGBoost's first calls (allocation, thread set-up) done before timing starts."""
    model = PeerModel(spec_path)
    warm = model.features(model.fresh(0, next(iter(model.types))))
    for _ in range(200):
        model.score(warm)
    return model


def write_spec(path: Path, feature_names: list[str], classes: list[str], threshold: float,
               types: dict[str, dict[str, Any]], max_signals: int, model_path: str) -> None:
    path.write_text(json.dumps({"feature_names": feature_names, "classes": classes,
                                "threshold": threshold, "types": types,
                                "max_signals": max_signals, "model_path": model_path}))


class Progress:
    """Counts processed events and when the first and last were done (written as JSON)."""

    def __init__(self) -> None:
        import time

        self.clock = time.time
        self.count = 0
        self.first_t: float | None = None
        self.last_t: float | None = None

    def seen(self) -> None:
        if self.first_t is None:
            self.first_t = self.clock()

    def done(self, n: int = 1) -> None:
        self.count += n
        self.last_t = self.clock()

    def write(self, path: str | Path, **extra: Any) -> None:
        elapsed = (self.last_t - self.first_t) if self.first_t and self.last_t else 0.0
        Path(path).write_text(json.dumps({
            "processed": self.count, "first_t": self.first_t, "last_t": self.last_t,
            "elapsed_s": round(elapsed, 3),
            "events_per_s": self.count / elapsed if elapsed > 0 else 0.0, **extra}))
