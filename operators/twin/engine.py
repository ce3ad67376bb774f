"""The per-shard analysis step, free of Bytewax: telemetry batch in -> twins, threats, actions out.

update store + window kernels -> closed windows -> detectors + XGBoost -> decide -> outputs.
The Bytewax operator, `train` and `replay` all drive this same class.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.batches import OutMsg, TelemetryBatch
from twinguard.operators.detect import multivariate as MV
from twinguard.operators.detect.anomaly import anomaly_score
from twinguard.operators.detect.cohorts import Effective, cohort_rows, with_tier
from twinguard.operators.detect.detectors import DETECTORS, run_detectors
from twinguard.operators.detect.policy import (
    RESPONSES,
    Decisions,
    aims,
    decide,
    output_id,
    response_actions,
    severity,
)
from twinguard.operators.detect.scoring import Scorer, all_normal, finite_features
from twinguard.operators.feedback.apply import HiddenCounter, hide_suppressed, relearn_baselines
from twinguard.operators.feedback.table import SuppressionTable
from twinguard.operators.integrity.signatures import authentic
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.registry.slot import ModelSlot
from twinguard.operators.settings import DetectionConfig, PipelineConfig, ResponseConfig, RiskConfig
from twinguard.operators.twin import identity
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin import risk as R
from twinguard.operators.twin.response import current
from twinguard.operators.twin.store import TwinStore
from twinguard.operators.twin.window_records import window_records
from twinguard.schemas.device_types import DeviceTypeTable
from twinguard.schemas.features import FEATURE_NAMES, FEATURE_SCHEMA, N_FEATURES, THREAT_CLASSES
from twinguard.schemas.messages import (
    Contribution,
    LastThreat,
    SourceRange,
    ThreatEvent,
    TwinState,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
TOP_FEATURES = 5
BASELINE_WINDOWS = FEATURE_NAMES.index("baseline_windows")
NO_CAP = 2**62
_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class EngineContext:
    """Everything a shard engine needs besides its state (shared by all shards of a process)."""

    types: DeviceTypeTable
    scorer: Scorer
    pipeline: PipelineConfig
    detection: DetectionConfig
    response: ResponseConfig
    now: Callable[[], float] = time.time
    intel: IntelTable = field(default_factory=IntelTable)  # replicated reference data (intel.py)
    risk: RiskConfig = field(default_factory=RiskConfig)
    # live input: marks stay within now() + this; None where event time is simulated or historical
    mark_lead_ms: int | None = None
    telemetry_topic: str = "twinguard.telemetry"  # where rejected events' dead letters point
    # analyst verdicts (operators/feedback) and the hot-swapped model (operators/registry): both
    # replicated per process by a reader thread, like intel
    feedback: SuppressionTable = field(default_factory=SuppressionTable)
    models: ModelSlot | None = None  # None: `scorer` for good (train, replay, tests)
    hidden: HiddenCounter | None = None  # counts threats feedback hid (the process's metrics)

    def live_scorer(self) -> Scorer:
        return self.scorer if self.models is None else self.models.current
    emit_windows: bool = False  # every final window to the `windows` role (the archive, off by default)

    def mark_cap(self) -> int:
        """The highest event time a partition's mark may reach now (kernels.update_batch)."""
        return NO_CAP if self.mark_lead_ms is None else int(self.now() * 1000) + self.mark_lead_ms


@dataclass
class Windows:
    """Closed windows of one step: feature rows, their metadata (kernels.N_META columns), the
    windows' signal means and the multivariate model's verdicts (multivariate.N_OUT columns)."""

    features: F64
    meta: I64
    means: F64 | None = None
    mv: F64 | None = None

    def __len__(self) -> int:
        return int(self.meta.shape[0])

    @classmethod
    def of(cls, rows: F64, meta: I64) -> Windows:
        """Split the kernels' output rows: features, then the signal means."""
        return cls(rows[:, :N_FEATURES], meta, rows[:, N_FEATURES:])

    @property
    def evidence(self) -> F64:
        """What the detectors read: the features, then the multivariate verdicts."""
        mv = np.zeros((len(self), MV.N_OUT)) if self.mv is None else self.mv
        return np.hstack([self.features, mv])

    def evidence_row(self, r: int) -> F64:
        mv = np.zeros(MV.N_OUT) if self.mv is None else self.mv[r]
        return np.concatenate([self.features[r], mv])


STALL_S = 5.0  # a gap this long between calls means the worker was blocked, not that input idled


@dataclass
class ShardEngine:
    ctx: EngineContext
    store: TwinStore
    last_twin_emit: float = 0.0
    twin_cursor: float = 0.0  # slot position of the twin sweep (_sweep_twins)
    last_call: float = 0.0
    on_windows: list[Callable[[TwinStore, Windows, Decisions], None]] = field(default_factory=list)
    # per telemetry batch after the kernels (e.g. desired-state drift): (engine, batch, slots) -> out
    on_batch: list[Callable[[ShardEngine, TelemetryBatch, I64], list[OutMsg]]] = field(
        default_factory=list)
    scorer: Scorer | None = None  # the model of the current activation (pin_model)

    def pin_model(self) -> None:
        """Take the process's current model (and feedback's re-learn requests) for one whole
        activation: a model hot-swapped meanwhile scores from the next one, never half a batch."""
        self.scorer = self.ctx.live_scorer()
        if self.ctx.feedback.current.relearn:
            relearn_baselines(self.store, self.ctx.feedback.current)

    @property
    def model(self) -> Scorer:
        return self.scorer or self.ctx.scorer

    @property
    def triggers(self) -> F64:
        """Early-fire thresholds in kernels.T_* order."""
        d = self.ctx.detection
        return np.array([d.replay_min, d.auth_fail_min, d.distinct_ports_min, d.rate_ratio_min,
                         d.exfil_ratio_min, d.hmac_fail_min, d.clone_flips_min,
                         d.clone_seq_jumps_min, d.clock_skew_ms, d.unauth_logins_min,
                         d.hijack_msgs_min, d.port_burst_min], dtype=np.float64)

    @classmethod
    def fresh(cls, ctx: EngineContext) -> ShardEngine:
        return cls(ctx, TwinStore(len(ctx.types), ctx.pipeline.long_windows - 1,
                                  width=ctx.types.width))

    def process(self, batch: TelemetryBatch) -> list[OutMsg]:
        """Fold a batch of this shard's telemetry in; outputs for windows it closed."""
        st, ctx = self.store, self.ctx
        self._skip_stall()
        trusted = authentic(batch.sig_state, ctx.detection.require_signature)
        slots, verdict = st.admit(batch.device_ids, batch.type_idx, trusted)
        out: list[OutMsg] = []
        if verdict.any():  # forged/unsigned traffic without a twin, a signed change of type
            out = identity.rejections(batch, slots, verdict, st, ctx.types, ctx.telemetry_topic,
                                      int(ctx.now() * 1000))
            keep = np.flatnonzero(verdict == 0)
            batch, slots, trusted = batch.take(keep), slots[keep], trusted[keep]
        identity.update(st, slots, batch, trusted, ctx.types.firmware)
        R.observe(st, slots, batch, ctx.intel.current, ctx.risk, trusted)
        n = len(batch)
        if n:
            st.ensure_partitions(int(batch.partition.max()))
        before = st.part_max.copy()
        feats = np.empty((2 * n, N_FEATURES + st.width))  # each event closes a window and/or fires early
        meta = np.empty((2 * n, K.N_META), dtype=np.int64)
        peer_flags = np.zeros(n, dtype=np.int8)
        t = ctx.types
        rows = K.update_batch(
            slots, batch.ts, batch.seq, _widen(batch.signals, st.width), batch.bytes_in, batch.bytes_out,
            batch.conns, batch.auth_fail, batch.dst_port, batch.src_hash, batch.sig_state,
            batch.fw_unknown, batch.partition, batch.offset, batch.auth_ok,
            batch.dst_hash, batch.princ_hash, *st.kernel_state(), t.nominal_hz,
            t.lo, t.hi, t.zfloor, t.roc_min, t.roc_max, t.inv, t.n_signals, ctx.pipeline.window_ms,
            ctx.detection.warmup_windows, int(ctx.detection.require_signature),
            ctx.pipeline.allowed_lateness_ms, self.triggers, st.part_max, ctx.mark_cap(), feats,
            meta, peer_flags)
        st.part_wall[st.part_max > before] = ctx.now()
        identity.record_peers(st, slots, batch, trusted, peer_flags)
        out += self._judge(Windows.of(feats[:rows], meta[:rows]))
        for hook in self.on_batch:
            out += hook(self, batch, slots)
        return out + self.tick()

    def tick(self) -> list[OutMsg]:
        """Close windows the watermark has passed; emit coalesced twins when their interval is due."""
        st, p = self.store, self.ctx.pipeline
        self._skip_stall()
        out: list[OutMsg] = []
        if st.max_ts >= 0:  # a partition's mark moves on with the wall clock while it is idle
            idle_ms = np.maximum((self.ctx.now() - st.part_wall) * 1000, 0).astype(np.int64)
            marks = np.where(st.part_max >= 0, st.part_max + idle_ms - p.allowed_lateness_ms, -1)
            out += self._close_until(marks)
        return out + self._sweep_twins()

    def _skip_stall(self) -> None:
        """Time the worker spent blocked (e.g. the sink waiting out a broker outage) is not idle
        input: shift the partitions' wall marks so idle windows do not close early."""
        now = self.ctx.now()
        if self.last_call and now - self.last_call > STALL_S:
            self.store.part_wall += now - self.last_call
        self.last_call = now

    def flush(self) -> list[OutMsg]:
        """End of input: close every open window and emit every changed twin."""
        return self._close_until(np.full(self.store.part_max.size, 2**62)) + self.twins()

    def _close_until(self, part_watermark: I64) -> list[OutMsg]:
        st, ctx = self.store, self.ctx
        feats = np.empty((st.size, N_FEATURES + st.width))
        meta = np.empty((st.size, K.N_META), dtype=np.int64)
        a = st.arrays
        t = ctx.types
        rows = K.close_due(st.size, part_watermark, a["istate"], a["acc"], a["sacc"], a["ewma"],
                           a["ports"], a["ring"], a["ring_ws"], a["ring_ports"], a["base"],
                           st.peer, st.peer_n, t.nominal_hz, t.lo, t.hi, t.zfloor,
                           t.n_signals, ctx.pipeline.window_ms,
                           ctx.detection.warmup_windows, feats, meta)
        # features finite before anything judges them: the model refuses inf (item 1 of issue 18)
        return self._judge(Windows.of(finite_features(feats[:rows]), meta[:rows]))

    def _judge(self, w: Windows) -> list[OutMsg]:
        if len(w) == 0:
            return []
        w.mv = self._multivariate(w)
        evidence, det = w.evidence, self.ctx.detection
        cohorts = self._cohorts(w)  # windows of devices under intel policy (detect/cohorts.py)
        fired = run_detectors(evidence, det)
        for rows, eff in cohorts:
            fired[rows] = run_detectors(evidence[rows], eff.detection)
        # the model judges whole windows of learned devices; early rows are for the detectors
        warm = w.features[:, BASELINE_WINDOWS] >= det.warmup_windows
        warm &= w.meta[:, 6] == 1
        probs = self._predict(w.features, warm | fired.any(axis=1))
        anomaly = np.maximum(anomaly_score(evidence, det.anomaly_z, det.anomaly_volume_z),
                             MV.score(w.mv))
        d = decide(fired, probs, warm, det, anomaly)
        for rows, eff in cohorts:
            e = eff.detection
            anomaly[rows] = np.maximum(anomaly_score(evidence[rows], e.anomaly_z,
                                                     e.anomaly_volume_z), MV.score(w.mv[rows]))
            sub = decide(fired[rows], probs[rows], warm[rows], e, anomaly[rows])
            d.cls[rows], d.score[rows] = sub.cls, sub.score
        for hook in self.on_windows:
            hook(self.store, w, d)
        ctx = self.ctx
        out: list[OutMsg] = (window_records(
            self.store, ctx.types, ctx.intel.current, ctx.risk, self.model.version, w.features,
            w.meta, d.cls, probs) if ctx.emit_windows else [])
        rows = np.nonzero(d.cls > 0)[0]
        rows = rows[self._not_cooling_down(w, d, rows)]
        rows = hide_suppressed(self.store, self.ctx.types, self.ctx.feedback.current, w.meta, d.cls,
                               rows, self.model.version, int(self.ctx.now() * 1000), self.ctx.hidden)
        if rows.size == 0:
            return out
        contrib = self.model.contributions(w.features[rows], d.cls[rows])
        policy = {int(r): eff for group, eff in cohorts for r in group.tolist()}
        for j, r in enumerate(rows.tolist()):
            out += self._threat(w, r, d, fired[r], probs[r], contrib[j], policy.get(r))
        return out

    def _cohorts(self, w: Windows) -> list[tuple[I64, Effective]]:
        st, intel = self.store, self.ctx.intel.current
        if not intel.cohorts:
            return []
        slots = w.meta[:, 0].tolist()
        types = self.ctx.types.types
        kinds = [types[int(st.arrays["istate"][s, K.I_TYPE])].name for s in slots]
        return cohort_rows(intel, self.ctx.detection, kinds, [st.fws[s] for s in slots],
                           w.meta[:, 2].tolist())

    def _multivariate(self, w: Windows) -> F64:
        """The multivariate model (detect/multivariate.py) learns from / judges the closed windows."""
        st, d = self.store, self.ctx.detection
        means = w.means if w.means is not None else np.full((len(w), st.width), np.nan)
        t = self.ctx.types
        return MV.judge(st.arrays, st.arrays["istate"], t.n_signals, w.meta[:, 0],
                        w.meta[:, 6] == 1, MV.clean_windows(w.features), means,
                        MV.MultivariateConfig(d.multivariate_windows, d.multivariate_fa_rate,
                                              d.multivariate_limits, d.multivariate_time_context),
                        MV.monotonic(t.roc_min, t.roc_max), (w.meta[:, 1] + w.meta[:, 2]) // 2,
                        self.ctx.pipeline.window_ms)

    def _predict(self, features: F64, rows: npt.NDArray[np.bool_]) -> F64:
        """Class probabilities of `rows`, the others 'normal': `decide` reads the model only for
        warm rows and rows a detector flagged, and the model costs ~5-10 µs per row (60 rounds x 15
        classes, treewalk), so learning devices' quiet windows are not scored."""
        probs = all_normal(features.shape[0])
        if rows.any():
            probs[rows] = self.model.predict(features[rows])
        return probs

    def _not_cooling_down(self, w: Windows, d: Decisions, rows: I64) -> npt.NDArray[np.bool_]:
        """Same device + same class alerts at most once per cooldown; the window still counts."""
        alert_ts = self.store.arrays["alert_ts"]
        keep = np.zeros(rows.size, dtype=bool)
        for j, r in enumerate(rows.tolist()):
            s, c, end = int(w.meta[r, 0]), int(d.cls[r]), int(w.meta[r, 2])
            if end - alert_ts[s, c] >= self.ctx.detection.alert_cooldown_ms:
                alert_ts[s, c] = end
                keep[j] = True
        return keep

    def _threat(self, w: Windows, r: int, d: Decisions, fired: npt.NDArray[np.bool_],
                probs: F64, contrib: F64, policy: Effective | None = None) -> list[OutMsg]:
        st, ctx = self.store, self.ctx
        s, ws, we, part, first, last, _final = (int(v) for v in w.meta[r])
        device, threat = st.device_ids[s], THREAT_CLASSES[int(d.cls[r])]
        version = self.model.version
        tid = output_id(device, threat, version, str(we))
        dets = [det for det, hit in zip(DETECTORS, fired.tolist(), strict=True) if hit]
        dtype = ctx.types.types[st.arrays["istate"][s, K.I_TYPE]]
        names = [sig.name for sig in dtype.signals]
        top = np.argsort(-np.abs(contrib))[:TOP_FEATURES]
        if not contrib.any():  # rules-only: explain with the fired detectors' raw features
            top = np.array([], dtype=np.int64)
        responses = RESPONSES[threat]
        now_ms = int(ctx.now() * 1000)
        ev = ThreatEvent(
            id=tid, device_id=device, device_type=dtype.name,
            threat=threat, severity=severity(threat, float(d.score[r]), len(dets)),
            score=round(float(d.score[r]), 4),
            probabilities={} if self.model.booster is None else
                          {c: round(float(p), 4) for c, p in zip(THREAT_CLASSES, probs, strict=True)},
            detectors=[det.name for det in dets],
            reasons=([f"{det.name}: {det.describe(w.evidence_row(r), names)}" for det in dets] or
                     [f"model: p({threat})={d.score[r]:.2f}"]) + R.threat_reasons(st, s, we, ctx.risk)
                    + ([policy.why] if policy else []),
            features=[Contribution(FEATURE_NAMES[k], round(float(w.features[r, k]), 4),
                                   round(float(contrib[k]), 4)) for k in top.tolist()],
            model_version=version, feature_schema=FEATURE_SCHEMA, window_start=ws, window_end=we,
            detected_at=now_ms, actions=[x.action for x in responses],
            source=SourceRange(part, first, last))
        a = st.arrays
        a["threats_total"][s] += 1
        R.record_detection(st, s, ev.severity, we, ctx.risk)
        a["last_threat"][s] = (d.cls[r], we)
        a["istate"][s, K.I_DIRTY] = 1
        st.last_threat_ids[s] = tid
        key = device.encode()
        out = [OutMsg("threats", key, _enc.encode(ev))]
        peers = {aim: identity.block_target(st, s, aim, ws, ctx.response.networks())
                 for aim in aims(threat)}
        acts = response_actions(threat, tid, device, now_ms, ctx.response.dry_run, peers)
        if policy is not None:
            acts = with_tier(acts, policy.tier, policy.why)
        out += [OutMsg("actions", key, _enc.encode(act)) for act in acts]
        return out

    def twins(self) -> list[OutMsg]:
        """Coalesced twin state of every device changed since the last emission."""
        self.last_twin_emit = self.ctx.now()
        return self._emit_twins(0, self.store.size)

    def _sweep_twins(self) -> list[OutMsg]:
        """Changed devices' twins from the slots a cursor passed since the last call: it moves
        through all slots once per `twin_emit_interval_s`, so a changed device is still emitted
        once per interval, but the encoding (~60 us per twin) is spread over the calls instead of
        stalling the worker for every device of the shard at once (~1 s per 17k devices)."""
        now, n = self.ctx.now(), self.store.size
        step = n * (now - self.last_twin_emit) / self.ctx.pipeline.twin_emit_interval_s
        self.last_twin_emit = now
        if step >= n:
            self.twin_cursor = 0.0
            return self._emit_twins(0, n)
        start, end = int(self.twin_cursor), int(self.twin_cursor + step)
        self.twin_cursor = (self.twin_cursor + step) % max(n, 1)
        if end <= n:
            return self._emit_twins(start, end)
        return self._emit_twins(start, n) + self._emit_twins(0, end - n)

    def _emit_twins(self, lo: int, hi: int) -> list[OutMsg]:
        """Twins of the changed devices among slots [lo, hi); they count as unchanged after."""
        st = self.store
        istate = st.arrays["istate"]
        dirty = lo + np.nonzero(istate[lo:hi, K.I_DIRTY])[0]
        if dirty.size == 0:
            return []
        istate[dirty, K.I_DIRTY] = 0
        states = self.twin_states(dirty, int(self.ctx.now() * 1000))
        return [OutMsg("twins", t.device_id.encode(), _enc.encode(t)) for t in states]

    def twin_state(self, s: int, now_ms: int) -> TwinState:
        return self.twin_states(np.array([s]), now_ms)[0]

    def twin_states(self, slots: I64, now_ms: int) -> list[TwinState]:
        """The twins of device slots (their arrays read in bulk: per-element numpy access costs
        more than the rest of a twin)."""
        st, a, ctx = self.store, self.store.arrays, self.ctx
        types, intel, max_ts = ctx.types.types, ctx.intel.current, st.max_ts
        cols = [a[k][slots].tolist() for k in ("istate", "last_threat", "last_sig", "desired",
                                                  "desired_ts", "threats_total", "commands")]
        hidden = [st.suppressed.get(s) for s in slots.tolist()]
        risks = R.assess_many(st, slots, types, intel, ctx.risk)
        out = []
        for s, i, (cls, at), sig, want, want_ts, total, commands, (risk, reasons), hid in zip(
                slots.tolist(), *cols, risks, hidden, strict=True):
            dt = types[i[K.I_TYPE]]
            last = None
            if cls > 0:
                last = LastThreat(id=st.last_threat_ids[s] or "", threat=THREAT_CLASSES[cls],
                                  severity=severity(THREAT_CLASSES[cls], 0.0, 0), at=at)
            names = [x.name for x in dt.signals]
            out.append(TwinState(
                device_id=st.device_ids[s], device_type=dt.name, version=i[K.I_EVENTS],
                last_seen=i[K.I_LAST_TS], seq=i[K.I_LAST_SEQ], fw=st.fws[s],
                src_ip=st.src_ips[s], reported=dict(zip(names, map(_num, sig), strict=False)),
                status=self._status(i[K.I_BASE_N], cls, at, max_ts), threats_total=total,
                last_threat=last, baseline_windows=i[K.I_BASE_N], updated_at=now_ms, risk=risk,
                risk_reasons=reasons, commands=commands,
                response=current(st.responses.get(st.device_ids[s])),
                desired={n: float(v) for n, v, t in zip(names, want, want_ts, strict=False)
                         if t >= 0},
                suppressed_threats=hid[0] if hid else 0,
                last_suppressed=None if hid is None else LastThreat(
                    id=hid[1], threat=THREAT_CLASSES[hid[2]],
                    severity=severity(THREAT_CLASSES[hid[2]], 0.0, 0), at=hid[3])))
        return out

    def _status(self, base_n: int, cls: int, at: int, max_ts: int) -> str:
        if cls > 0 and max_ts - at < self.ctx.detection.alert_cooldown_ms:
            return "under_attack"
        if base_n < self.ctx.detection.warmup_windows:
            return "learning"
        return "normal"


def _widen(signals: F64, width: int) -> F64:
    """Signal columns padded with NaN to the store's width (the kernels index up to it)."""
    if signals.shape[1] == width:
        return signals
    if signals.shape[1] > width:
        msg = f"batch has {signals.shape[1]} signal columns, the device types only {width}"
        raise ValueError(msg)
    out = np.full((signals.shape[0], width), np.nan)
    out[:, : signals.shape[1]] = signals
    return out


def _num(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 6)  # NaN = never reported

