"""`twinguard replay`: stream a CSV/parquet table through the serving engine, one verdict per row.

Bring your own data: the table becomes one ad-hoc device type (its signal columns, no physical
ranges: a table states no limits, so only learned baselines judge), rows are sorted by event time
and fed in chunks to the same ShardEngine (kernels, detectors, model, policy) the dataflow uses, as
TelemetryBatch columns built from the arrays (no JSON round trip). Window decisions map back to
rows: every row of a window that decided a threat gets its class, score = the highest score of any
window (or early row) covering it. The first `warmup_rows` rows of each device are the learning
period: baselines learn, their flag is 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
from tqdm import tqdm

from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.detect.policy import Decisions
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.integrity.signatures import SIG_OK
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.engine import EngineContext, ShardEngine, Windows
from twinguard.operators.twin.store import TwinStore
from twinguard.pipelines.config import Config
from twinguard.pipelines.tables.read import Table
from twinguard.schemas.device_types import DeviceType, DeviceTypeTable, Signal, build_table
from twinguard.schemas.features import N_FEATURES, THREAT_CLASSES

if TYPE_CHECKING:
    from twinguard.pipelines.tables.model import LearnedBaselines

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DEFAULT_WARMUP_ROWS = 100
# the multivariate model's target rate for tables: 99.9 % limits on each of its four statistics.
# Live devices default lower ([detection] multivariate_fa_rate): a table's window is the data's own
# interval (minutes, hours), a live one 10 s, and alarms are counted per day.
DEFAULT_TABLE_FA_RATE = 0.004
CHUNK_ROWS = 20_000


class ReplayError(ValueError):
    """The table cannot be replayed as asked; the message says what to change."""


@dataclass(frozen=True)
class ReplayOptions:
    warmup_rows: int | None = None  # None: DEFAULT_WARMUP_ROWS, 0 for devices with learned baselines
    window_s: float | None = None  # None: the median row interval
    progress: bool = True
    known_devices_only: bool = True  # with baselines: refuse a table none of whose devices has any
    deltas: bool = False  # also judge each signal's change from the device's previous row
    mv_windows: int | None = None  # multivariate learning windows; None: those of the learning period
    fa_rate: float | None = None  # multivariate target rate; None: DEFAULT_TABLE_FA_RATE


@dataclass
class WindowTrace:
    """Every judged window (closed and early): its rows (sorted positions) and decision."""

    slot: list[I64] = field(default_factory=list)
    first: list[I64] = field(default_factory=list)
    last: list[I64] = field(default_factory=list)
    final: list[I64] = field(default_factory=list)
    cls: list[I64] = field(default_factory=list)
    score: list[F64] = field(default_factory=list)
    features: list[F64] = field(default_factory=list)  # closed windows only (for training)

    def __call__(self, store: TwinStore, w: Windows, d: Decisions) -> None:
        self.slot.append(w.meta[:, 0].copy())
        self.first.append(w.meta[:, 4].copy())
        self.last.append(w.meta[:, 5].copy())
        self.final.append(w.meta[:, 6].copy())
        self.cls.append(d.cls.copy())
        self.score.append(d.score.copy())
        self.features.append(w.features[w.meta[:, 6] == 1].copy())

    def arrays(self) -> dict[str, np.ndarray]:
        cat = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64)
               for k, v in self.__dict__.items() if k != "features"}
        cat["features"] = np.vstack(self.features) if self.features else np.zeros((0, N_FEATURES))
        return cat


@dataclass
class ReplayResult:
    """Per input row (input order) the verdict, plus what `train` needs."""

    table: Table
    score: F64
    flag: I64
    cls: I64  # class index per row
    plan: ReplayPlan
    elapsed_s: float
    engine: ShardEngine
    window_features: F64  # closed windows, in closing order
    window_span: I64  # [windows, 2]: first and last index into grouped_rows of each closed window
    grouped_rows: I64  # input rows grouped by device, time order within a device

    @property
    def rows(self) -> int:
        return int(self.score.shape[0])

    @property
    def window_ms(self) -> int:
        return self.plan.window_ms

    def window_rows(self, i: int) -> I64:
        """Input rows of closed window i."""
        a, b = self.window_span[i]
        return self.grouped_rows[a:b + 1]


def table_device_type(table: Table, window_ms: int, rows_per_window: float) -> DeviceTypeTable:
    """One device type for the whole table: its signals without physical limits (a table states
    none, so learned baselines judge), nominal rate = rows_per_window per window."""
    name = f"table:{Path(table.source).stem}"
    signals = tuple(Signal(n, "", -math.inf, math.inf, -1e18, 1e18) for n in table.signal_names)
    hz = rows_per_window * 1000.0 / window_ms
    return build_table([DeviceType(name, f"replayed from {table.source}", hz, (), signals)])


DELTA_SUFFIX = ".delta"


def with_deltas(table: Table, order: I64, codes: I64) -> Table:
    """The table plus one derived signal per signal: its change since the same device's previous
    row (NaN for a device's first row). Baselines of these learn how fast each signal usually
    moves from row to row, so a spike on a smooth daily cycle stands out even where the level
    baseline, widened by the cycle itself, cannot see it."""
    x = table.signals[order]
    dev = codes[order]
    g = np.argsort(dev, kind="stable")
    xg = x[g]
    d = np.full_like(xg, np.nan)
    d[1:] = xg[1:] - xg[:-1]
    d[np.r_[True, dev[g][1:] != dev[g][:-1]]] = np.nan  # first row of each device
    delta = np.empty_like(d)
    delta[order[g]] = d
    names = table.signal_names + tuple(n + DELTA_SUFFIX for n in table.signal_names)
    return Table(table.source, table.time_ms, table.devices, names,
                 np.hstack([table.signals, delta]), table.labels)


def row_interval_ms(dev_sorted: I64, ts_sorted: I64) -> float:
    """Median over devices of each device's median interval between rows (ms, >= 1); where most
    of a device's rows share timestamps, its median positive interval (the spacing while active,
    not the mean, which long pauses inflate)."""
    g = np.lexsort((ts_sorted, dev_sorted))
    dev, t = dev_sorted[g], ts_sorted[g]
    same = dev[1:] == dev[:-1]
    diffs, owner = np.diff(t)[same], dev[1:][same]
    per_dev = [_median_gap(diffs), _median_gap(diffs[diffs > 0])]
    if np.unique(owner).size > 1:  # several devices: the median of their medians
        k = np.lexsort((diffs, owner))
        diffs, owner = diffs[k], owner[k]
        starts = np.r_[0, np.nonzero(np.diff(owner))[0] + 1]
        ends = np.r_[starts[1:], owner.size]
        per_dev = [_median_gap(diffs[a:b]) or _median_gap(diffs[a:b][diffs[a:b] > 0])
                   for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        return max(float(np.median([d for d in per_dev if d > 0] or [1000.0])), 1.0)
    return max(per_dev[0] or per_dev[1] or 1000.0, 1.0)


def _median_gap(d: I64) -> float:
    return float(np.median(d)) if d.size else 0.0


def learning_windows(dev_sorted: I64, ts_sorted: I64, learning: npt.NDArray[np.bool_],
                     window_ms: int) -> tuple[float, float]:
    """From the learning period: (median over devices of the windows it spans, the table's
    nominal rows per window = median over devices of the busiest window each saw). A table
    states no report rate, and irregular event data is bursty: a flood is judged against bursts
    already seen, not against the mean."""
    if not learning.any():
        return 1.0, 1.0
    key = dev_sorted[learning] * (2**40) + ts_sorted[learning] // window_ms
    keys, counts = np.unique(key, return_counts=True)
    dev = keys // (2**40)
    starts = np.r_[0, np.nonzero(np.diff(dev))[0] + 1]
    windows = np.diff(np.r_[starts, keys.size])
    busiest = np.maximum.reduceat(counts, starts)
    return float(np.median(windows)), max(float(np.median(busiest)), 1.0)


def _device_codes(table: Table) -> tuple[I64, list[str]]:
    names, codes = np.unique(np.asarray(table.devices, dtype=object).astype(str),
                             return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


@dataclass(frozen=True)
class ReplayPlan:
    """Window length, learning period and nominal rate chosen for one table."""

    window_ms: int
    warm_rows: int  # learning period per device (rows)
    warm_windows: int  # engine warmup_windows (own baselines; peers need kernels.PEER_WARM x)
    rows_per_window: float
    mv_windows: int  # windows the multivariate model learns from (operators/detect/multivariate.py)


def plan(table: Table, order: I64, codes: I64, rank: I64, opts: ReplayOptions,
         baselines: LearnedBaselines | None) -> ReplayPlan:
    ts, dev = table.time_ms[order], codes[order]
    interval = row_interval_ms(dev, ts)
    window_ms = max(int(round(opts.window_s * 1000)), 1) if opts.window_s else int(round(interval))
    if baselines is not None:  # baselines are per window: the length they were learned with
        window_ms = baselines.window_ms
    warm_rows = DEFAULT_WARMUP_ROWS if opts.warmup_rows is None else opts.warmup_rows
    windows, nominal = learning_windows(dev, ts, rank < max(warm_rows, 1), window_ms)
    # the learning period = warm_rows: own baselines warm after a tenth of its windows, the
    # slower type (peer) baseline at its end (kernels.PEER_WARM); the engine cannot tell more
    # than BASE_N_CAP windows apart
    warm_windows = min(max(1, math.ceil(windows / K.PEER_WARM)), K.BASE_N_CAP)
    if baselines is not None:
        nominal = baselines.rows_per_window
    elif warm_rows < DEFAULT_WARMUP_ROWS:  # a short learning period says little about bursts
        nominal = learning_windows(dev, ts, rank < DEFAULT_WARMUP_ROWS, window_ms)[1]
    mv_windows = opts.mv_windows if opts.mv_windows is not None else int(round(windows))
    return ReplayPlan(window_ms, warm_rows, warm_windows, nominal, mv_windows)


def table_fa_rate(opts: ReplayOptions) -> float:
    """The multivariate model's target false-alarm rate per window for a table."""
    return DEFAULT_TABLE_FA_RATE if opts.fa_rate is None else opts.fa_rate


def table_windows(table: Table, window_ms: int) -> int:
    """Median over devices of the windows the whole table spans (`train` learns from all of them)."""
    order = np.argsort(table.time_ms, kind="stable")
    codes, _ = _device_codes(table)
    ts, dev = table.time_ms[order], codes[order]
    return int(round(learning_windows(dev, ts, np.ones(order.size, dtype=bool), window_ms)[0]))


def table_window_ms(table: Table, window_s: float | None) -> int:
    """The window length a replay of `table` uses: --window, else the median row interval."""
    if window_s:
        return max(int(round(window_s * 1000)), 1)
    order = np.argsort(table.time_ms, kind="stable")
    codes, _ = _device_codes(table)
    return int(round(row_interval_ms(codes[order], table.time_ms[order])))


def replay_table(table: Table, cfg: Config, opts: ReplayOptions, scorer: Scorer | None = None,
                 baselines: LearnedBaselines | None = None) -> ReplayResult:
    """Stream `table` through a ShardEngine in time order; per-row verdicts in input order."""
    n = int(table.time_ms.shape[0])
    if n == 0:
        raise ReplayError(f"{table.source}: the table has no rows")
    if int(table.time_ms.min()) < 0:
        raise ReplayError(f"{table.source}: row {int(table.time_ms.argmin())} is dated before "
                          "1970 (negative epoch time); shift or re-parse the time column")
    _warm_up(cfg)
    order = np.argsort(table.time_ms, kind="stable")
    codes, _ = _device_codes(table)
    rank = _rank_in_device(codes[order])  # row's index within its device, time order
    if opts.deltas or (baselines is not None and baselines.has_deltas):
        table = with_deltas(table, order, codes)
    p = plan(table, order, codes, rank, opts, baselines)
    types = table_device_type(table, p.window_ms, p.rows_per_window)
    ctx = EngineContext(
        types, scorer or Scorer.rules_only(),
        replace(cfg.pipeline, shards=1, window_ms=p.window_ms, allowed_lateness_ms=0),
        replace(cfg.detection, warmup_windows=p.warm_windows, multivariate_windows=p.mv_windows,
                multivariate_fa_rate=table_fa_rate(opts)),
        cfg.response,
        now=lambda: 0.0)  # event time only: no wall-clock idling, twins only at the end
    engine = ShardEngine.fresh(ctx)
    trace = WindowTrace()
    engine.on_windows.append(trace)
    learned: set[str] = set()
    if baselines is not None:
        learned = baselines.apply(engine.store, table, opts.known_devices_only)
    t0 = time.perf_counter()
    _stream(engine, table, order, rank, types, opts.progress)
    engine.flush()
    elapsed = time.perf_counter() - t0
    return _rows_from_windows(table, order, codes, rank, trace, p, learned, opts, elapsed, engine)


_warmed: list[bool] = []


def _warm_up(cfg: Config) -> None:
    """Load the Numba kernels (cached on disk) once per process, before any clock starts."""
    if _warmed:
        return
    _warmed.append(True)
    tiny = Table("warm-up", np.arange(4, dtype=np.int64) * 1000, ["w"] * 4, ("x",),
                 np.ones((4, 1)), None)
    replay_table(tiny, cfg, ReplayOptions(warmup_rows=1, progress=False))


def _rank_in_device(dev_sorted: I64) -> I64:
    """For rows in time order, how many earlier rows the same device has."""
    g = np.argsort(dev_sorted, kind="stable")
    starts = np.r_[0, np.nonzero(np.diff(dev_sorted[g]))[0] + 1]
    sizes = np.diff(np.r_[starts, g.size])
    rank_g = np.arange(g.size) - np.repeat(starts, sizes)
    rank = np.empty(g.size, dtype=np.int64)
    rank[g] = rank_g
    return rank


def _stream(engine: ShardEngine, table: Table, order: I64, rank: I64, types: DeviceTypeTable,
            progress: bool) -> None:
    n = order.size
    ts = table.time_ms[order]
    sig = table.signals[order]
    devices = [table.devices[i] for i in order.tolist()]
    width = types.width
    bar = tqdm(total=n, desc=f"replay {Path(table.source).name}", unit="row", unit_scale=True,
               disable=not progress or n < CHUNK_ROWS)
    for a in range(0, n, CHUNK_ROWS):
        b = min(a + CHUNK_ROWS, n)
        engine.process(_batch(devices[a:b], ts[a:b], rank[a:b], sig[a:b], width, a))
        bar.update(b - a)
    bar.close()


def _batch(devices: list[str], ts: I64, seq: I64, sig: F64, width: int, first: int) -> TelemetryBatch:
    """Columns for the kernels straight from the table's arrays; offset = sorted position."""
    m = len(devices)
    zeros, izeros = np.zeros(m), np.zeros(m, dtype=np.int64)
    none: list[str | None] = [None] * m
    signals = np.full((m, width), np.nan)
    signals[:, : sig.shape[1]] = np.where(np.isfinite(sig), sig, np.nan)  # inf = not a reading
    return TelemetryBatch(
        device_ids=devices, src_ips=none, dst_ips=none, principals=none, fws=none,
        shard=izeros, type_idx=izeros, ts=np.ascontiguousarray(ts), seq=np.ascontiguousarray(seq),
        signals=signals, bytes_in=zeros, bytes_out=zeros, conns=zeros, auth_fail=zeros,
        auth_ok=zeros, dst_port=np.full(m, -1, dtype=np.int64), src_hash=izeros, dst_hash=izeros,
        princ_hash=izeros,
        sig_state=np.full(m, SIG_OK, dtype=np.int64), fw_unknown=izeros, partition=izeros,
        offset=np.arange(first, first + m, dtype=np.int64))


def _rows_from_windows(table: Table, order: I64, codes: I64, rank: I64, trace: WindowTrace,
                       p: ReplayPlan, learned: set[str], opts: ReplayOptions, elapsed: float,
                       engine: ShardEngine) -> ReplayResult:
    n = order.size
    w = trace.arrays()
    dev_sorted = codes[order]
    g = np.argsort(dev_sorted, kind="stable")  # grouped by device, time order within
    gpos = np.empty(n, dtype=np.int64)
    gpos[g] = np.arange(n)
    lo, hi = gpos[w["first"]], gpos[w["last"]]
    lengths = hi - lo + 1
    flat = np.repeat(lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    g_score = np.zeros(n)
    np.maximum.at(g_score, flat, np.repeat(w["score"], lengths))
    # class of the highest-scoring threat window covering the row (score, then class, as one key)
    key = np.where(w["cls"] > 0, np.round(w["score"] * 1e6).astype(np.int64) * 64 + w["cls"], 0)
    g_key = np.zeros(n, dtype=np.int64)
    np.maximum.at(g_key, flat, np.repeat(key, lengths))
    sorted_score, sorted_cls = np.empty(n), np.empty(n, dtype=np.int64)
    sorted_score[g], sorted_cls[g] = g_score, g_key % 64
    # the learning period: first warm_rows rows per device (none for devices with baselines
    # learned by `train`, unless --warmup-rows was given)
    skip = np.full(n, p.warm_rows, dtype=np.int64)
    if learned and opts.warmup_rows is None:
        names = np.asarray(table.devices, dtype=object)[order]
        skip[np.isin(names.astype(str), list(learned))] = 0
    learning = rank < skip
    sorted_score[learning], sorted_cls[learning] = 0.0, 0
    score, cls = np.empty(n), np.empty(n, dtype=np.int64)
    score[order], cls[order] = np.clip(sorted_score, 0.0, 1.0), sorted_cls
    final = w["final"] == 1
    return ReplayResult(table, score, (cls > 0).astype(np.int64), cls, p, elapsed, engine,
                        w["features"],
                        np.column_stack([lo[final], hi[final]]), order[g])


def write_predictions(res: ReplayResult, out: str | Path) -> Path:
    """One row per input row, input order: row, time, device, score, flag, threat[, label]."""
    p = Path(out)
    t = res.table
    cols: dict[str, object] = {
        "row": np.arange(res.rows, dtype=np.int64), "time": t.time_ms, "device": t.devices,
        "score": np.round(res.score, 6), "flag": res.flag,
        "threat": np.asarray(THREAT_CLASSES, dtype=object)[res.cls].tolist()}
    if t.labels is not None:
        cols["label"] = t.labels
    df = pl.DataFrame(cols)
    p.parent.mkdir(parents=True, exist_ok=True)
    if output_format(p) == "parquet":
        df.write_parquet(p)
    else:
        df.write_csv(p)
    return p


def output_format(path: str | Path) -> str:
    """csv or parquet by the file name; checked before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise ReplayError(f"--out {path}: use a .csv or .parquet file name")


def summary(res: ReplayResult) -> str:
    """A few lines for the terminal: speed, windows, flagged rows by class, labels if any."""
    t = res.table
    classes, counts = np.unique(res.cls[res.flag == 1], return_counts=True)
    flagged = ", ".join(f"{THREAT_CLASSES[c]} {n}" for c, n in zip(classes, counts, strict=True))
    deltas = sum(n.endswith(DELTA_SUFFIX) for n in t.signal_names)
    signals = f"{len(t.signal_names) - deltas} signals" + (" + their changes" if deltas else "")
    lines = [
        f"{res.rows:,} rows of {len(set(t.devices))} device(s), {signals}, "
        f"in {res.elapsed_s:.1f} s ({res.rows / max(res.elapsed_s, 1e-9):,.0f} rows/s); "
        f"window {res.window_ms / 1000:g} s, learning period {res.plan.warm_rows} rows/device, "
        f"nominal {res.plan.rows_per_window:g} rows/window",
        f"flagged rows: {int(res.flag.sum()):,} ({flagged or 'none'})",
    ]
    if t.labels is not None:
        attack = np.array([lab != "normal" for lab in t.labels])
        tp = int(np.sum(attack & (res.flag == 1)))
        lines.append(f"labelled attack rows: {int(attack.sum()):,}, of which flagged {tp:,}; "
                     f"flagged normal rows {int(np.sum(~attack & (res.flag == 1))):,} "
                     "(use `twinguard evaluate --predictions` for the full evaluation)")
    return "\n".join(lines)
