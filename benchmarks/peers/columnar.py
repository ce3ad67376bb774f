"""The expert peers' engine: the naive peers' features, computed the way a data engineer would.

Messages arrive in batches and are parsed in one call (`pyarrow.json.read_json` with an explicit
schema built from the device types); a batch is folded into per-(device, window) partial
aggregates with one `group_by`; those merge into the open windows; a device's window closes once
the device reports in a later one (the naive peers' semantics: a late event joins the device's
current window), and at the end of the input; the closed windows are scored with one
`inplace_predict` call. The verdicts are those of the naive peers' model over each window's
complete contents (`PeerModel.features` on the window's final state): `reference_verdicts`
computes them event by event, and the tests check that both expert peers agree with it.

Only numpy, pyarrow, polars and the model object are used (no twinguard): the peers run as
scripts, and this module is their sibling.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import polars as pl
import pyarrow.json as pj

WINDOW_MS = 10_000
KEYS = ["device_id", "type", "ws"]
NET = {"bytes_in": pl.Float64, "bytes_out": pl.Float64, "connections": pl.Float64, "dst_port": pl.Int64}


class Model(Protocol):
    """What the engine needs from `common.PeerModel` (duck-typed: the peers import it by path)."""

    names: list[str]
    classes: list[str]
    threshold: float
    types: dict[str, dict[str, Any]]
    ix: dict[str, int]
    sig_pos: list[int]
    booster: Any


def signal_names(model: Model) -> list[str]:
    """Every signal name of every device type, in a stable order (one column each)."""
    seen: dict[str, None] = {}
    for t in model.types.values():
        seen.update(dict.fromkeys(t["signals"]))
    return list(seen)


def _col(name: str, stat: str) -> str:
    return f"{stat}:{name}"


class WindowBook:
    """Open windows of one partition (or one consumer) as a polars frame of partial aggregates."""

    def __init__(self, model: Model, window_ms: int = WINDOW_MS) -> None:
        self.model = model
        self.window_ms = window_ms
        self.signals = signal_names(model)
        schema = {"device_id": pl.String, "type": pl.String, "ts": pl.Int64,
                  "signals": pl.Struct(dict.fromkeys(self.signals, pl.Float64)),
                  "net": pl.Struct(NET), "auth": pl.Struct({"failures": pl.Float64})}
        self.empty = pl.DataFrame(schema=schema)
        # fields outside the schema are ignored; missing ones are null
        self.json_options = pj.ParseOptions(explicit_schema=self.empty.to_arrow().schema,
                                            unexpected_field_behavior="ignore")
        self.open: pl.DataFrame | None = None
        self.events = 0

    # ---- folding

    def parse(self, values: list[bytes]) -> pl.DataFrame:
        """One batch of JSON messages as columns: Arrow's multi-threaded JSON reader (the fastest
        columnar parser at hand here, ahead of polars' own), zero-copy into polars."""
        frame = (pl.from_arrow(pj.read_json(io.BytesIO(b"\n".join(values)),
                                            parse_options=self.json_options))
                 if values else self.empty)
        assert isinstance(frame, pl.DataFrame)
        net, sig = pl.col("net").struct, pl.col("signals").struct
        return frame.select(
            "device_id", "type", (pl.col("ts") - pl.col("ts") % self.window_ms).alias("ws"),
            pl.col("ts"), *(net.field(f).alias(f) for f in NET),
            pl.col("auth").struct.field("failures").alias("auth"),
            *(sig.field(s).alias(s) for s in self.signals))

    def _partials(self, ev: pl.DataFrame) -> pl.DataFrame:
        aggs = [pl.len().cast(pl.Int64).alias("n"), pl.col("ts").max().alias("last_ts"),
                pl.col("bytes_in").sum().alias("bin"), pl.col("bytes_out").sum().alias("bout"),
                pl.col("connections").sum().alias("conns"), pl.col("auth").sum().alias("auth"),
                pl.col("dst_port").drop_nulls().unique().alias("ports")]
        for s in self.signals:
            c = pl.col(s)
            aggs += [c.count().cast(pl.Int64).alias(_col(s, "n")), c.sum().alias(_col(s, "sum")),
                     c.min().alias(_col(s, "min")), c.max().alias(_col(s, "max"))]
        return ev.group_by(KEYS).agg(aggs)

    def _merge(self, a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
        both = pl.concat([a, b])
        if both.select(pl.struct(KEYS).is_unique().all()).item():
            return both  # no window in both: nothing to combine (the common case)
        aggs = [pl.col("n").sum(), pl.col("last_ts").max(), pl.col("bin").sum(), pl.col("bout").sum(),
                pl.col("conns").sum(), pl.col("auth").sum(),
                pl.col("ports").list.explode(keep_nulls=False, empty_as_null=False).unique().alias("ports")]
        for s in self.signals:
            aggs += [pl.col(_col(s, "n")).sum(), pl.col(_col(s, "sum")).sum(),
                     pl.col(_col(s, "min")).min(), pl.col(_col(s, "max")).max()]
        return both.group_by(KEYS).agg(aggs)

    def add(self, values: list[bytes]) -> pl.DataFrame:
        """Fold a batch in; the windows it closed (see `close`)."""
        if not values:
            return self.close()
        ev = self._in_device_windows(self.parse(values))
        self.events += ev.height
        part = self._partials(ev)
        self.open = part if self.open is None else self._merge(self.open, part)
        return self.close()

    def _in_device_windows(self, ev: pl.DataFrame) -> pl.DataFrame:
        """Each event in its device's current window: a late event (older than a window the device
        already reported in) joins that window, as in the per-event reference, so a closed window
        never reopens and each window is judged once."""
        ws = pl.col("ws").cum_max().over("device_id")
        if self.open is not None and self.open.height:
            latest = self.open.group_by("device_id").agg(pl.col("ws").max().alias("_open"))
            return ev.join(latest, on="device_id", how="left", maintain_order="left").with_columns(
                pl.max_horizontal(ws, pl.col("_open")).alias("ws")).drop("_open")
        return ev.with_columns(ws.alias("ws"))

    def close(self, final: bool = False) -> pl.DataFrame:
        """Remove and return the windows that are complete: a device's window closes once the device
        reported in a later one (every window, `final`: at the end of the input)."""
        if self.open is None:
            return self._partials(self._in_device_windows(self.parse([])))
        if final:
            done, self.open = self.open, self.open.clear()
            return done
        due = pl.col("ws") < pl.col("ws").max().over("device_id")
        done = self.open.filter(due)
        self.open = self.open.filter(~due)
        return done

    # ---- features and verdicts

    def features(self, closed: pl.DataFrame) -> np.ndarray:
        """The naive peers' feature rows (float32, NaN where not computed) for closed windows."""
        m, ix = self.model, self.model.ix
        x = np.full((closed.height, len(m.names)), np.nan, dtype=np.float32)
        if closed.height == 0:
            return x
        n = closed["n"].to_numpy().astype(np.float64)
        bin_, bout = closed["bin"].to_numpy(), closed["bout"].to_numpy()
        nominal = closed["type"].replace_strict(
            {k: t["nominal_hz"] for k, t in m.types.items()}, return_dtype=pl.Float64).to_numpy()
        x[:, ix["count_10s"]] = n
        x[:, ix["rate_ratio_10s"]] = n / (self.window_ms / 1000 * nominal)
        x[:, ix["log_bytes_out_10s"]] = np.log1p(bout)
        x[:, ix["log_bytes_in_10s"]] = np.log1p(bin_)
        x[:, ix["out_in_log_ratio"]] = np.log1p(bout) - np.log1p(bin_)
        x[:, ix["conns_10s"]] = closed["conns"].to_numpy()
        x[:, ix["distinct_ports_10s"]] = closed["ports"].list.len().to_numpy()
        x[:, ix["auth_fail_10s"]] = closed["auth"].to_numpy()
        margin = np.ones(closed.height)
        types = closed["type"].to_numpy()
        for name, t in m.types.items():
            rows = np.flatnonzero(types == name)
            if rows.size == 0:
                continue
            sub = closed[rows]
            for k, s in enumerate(t["signals"]):
                cnt = sub[_col(s, "n")].to_numpy()
                has = cnt > 0
                lo, span = t["lo"][k], t["hi"][k] - t["lo"][k]
                mean = np.divide(sub[_col(s, "sum")].to_numpy(), cnt, where=has, out=np.zeros(rows.size))
                x[rows[has], m.sig_pos[k]] = (mean[has] - lo) / span
                low = (sub[_col(s, "min")].to_numpy() - lo) / span
                high = (t["hi"][k] - sub[_col(s, "max")].to_numpy()) / span
                margin[rows[has]] = np.minimum(margin[rows[has]], np.minimum(low[has], high[has]))
        x[:, ix["sig_min_margin"]] = margin
        return x

    def verdicts(self, closed: pl.DataFrame) -> list[bytes]:
        """Threat records for the closed windows the model flags: one predict call for all of them."""
        if closed.height == 0:
            return []
        p = self.model.booster.inplace_predict(self.features(closed))
        cls = p.argmax(axis=1)
        best = p[np.arange(len(cls)), cls]
        hit = np.flatnonzero((cls != 0) & (best >= self.model.threshold))
        dev, ws, last = closed["device_id"], closed["ws"], closed["last_ts"]
        return [json.dumps({"device_id": dev[i], "threat": self.model.classes[cls[i]],
                            "score": round(float(best[i]), 4), "window_start": ws[i],
                            "window_end": ws[i] + self.window_ms, "ts": last[i]}).encode()
                for i in hit.tolist()]


def reference_verdicts(model: Any, values: Iterable[bytes]) -> dict[tuple[str, int], str]:
    """(device, window start) -> class for every flagged window, folding event by event with the
    naive peers' own `update` and scoring each window's final state (what the experts must match)."""
    final: dict[tuple[str, int], Any] = {}
    state: dict[str, Any] = {}
    for v in values:
        ev = json.loads(v)
        st = model.update(state.get(ev["device_id"]), ev)
        state[ev["device_id"]] = st
        final[(ev["device_id"], st["ws"])] = st
    out = {}
    for key, st in final.items():
        c, p = model.score(model.features(st))
        if c != 0 and p >= model.threshold and not math.isnan(p):
            out[key] = model.classes[c]
    return out
