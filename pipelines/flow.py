"""The twinguard dataflow graph.

Bytewax users: `python -m bytewax.run "twinguard.pipelines.flow:build_flow()"` (configuration from
$TWINGUARD_CONFIG and TWINGUARD__* variables)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.activity import ActivityBatch, ActivityOut, decode_activity
from twinguard.operators.decode.brake import RejectBrake, mark_quarantined
from twinguard.operators.decode.fast import decode_batch
from twinguard.operators.decode.results import ResultOut, decode_results
from twinguard.operators.decode.telemetry import DecodeConfig, DecodeOut
from twinguard.operators.detect.scoring import MODEL_FILE, Scorer, default_model_dir
from twinguard.operators.integrity.signatures import KeyRing
from twinguard.operators.intel.reader import IntelReader, start_intel_reader
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.io.kafka import IdleStop, KafkaBatchSource, KafkaOutSink
from twinguard.operators.registry.slot import ModelSlot
from twinguard.operators.twin.desired import ControlTable
from twinguard.operators.twin.engine import EngineContext
from twinguard.operators.twin.logic import ShardItem, ShardLogic
from twinguard.operators.twin.store import TwinStore
from twinguard.operators.users.insider import Reorder, UserLogic, UserStore
from twinguard.pipelines import heap
from twinguard.pipelines.adapt import readers as adaptive
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.kafka.admin import require_topics
from twinguard.pipelines.metrics.counting import (
    CENSUS,
    TimedLogic,
    count_input,
    counting_sink,
    record_lag,
    timed,
)
from twinguard.pipelines.metrics.server import serve
from twinguard.schemas.device_types import DeviceTypeTable, load_device_types

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What the steps need, built once per process from the config."""

    cfg: Config
    types: DeviceTypeTable
    keys: KeyRing
    engine: EngineContext
    decode: DecodeConfig
    brake: RejectBrake
    control: ControlTable

    @classmethod
    def from_config(cls, cfg: Config, scorer: Scorer | None = None, *, live: bool = False
                    ) -> Runtime:
        """`live`: the flow faces real input (Kafka): the development HMAC key is refused unless
        integrity.insecure_dev_key, and event-time marks stay within the wall clock + a small lead.
        Off where the input is simulated or historical (demo, train, evaluation, tests)."""
        types = load_device_types()
        keys = KeyRing.from_config(cfg.integrity.key_file, cfg.integrity.master_key_env,
                                   allow_dev_key=not live or cfg.integrity.insecure_dev_key)
        if scorer is None:
            scorer = load_scorer(cfg.detection.model_dir)
        p = cfg.pipeline
        intel = (IntelTable.from_file(cfg.intel.file, cfg.intel.limits()) if cfg.intel.file
                 else IntelTable())
        return cls(cfg, types, keys,
                   EngineContext(types, scorer, p, cfg.detection, cfg.response, intel=intel,
                                 risk=cfg.risk, mark_lead_ms=p.max_mark_lead_ms if live else None,
                                 telemetry_topic=cfg.topics.telemetry, models=ModelSlot(scorer),
                                 hidden=adaptive.count_hidden,
                                 emit_windows=cfg.archive.emit_windows),
                   DecodeConfig(p.shards, p.max_message_bytes, p.max_future_skew_ms),
                   RejectBrake(cfg.brake), ControlTable.from_types(types))


def load_scorer(model_dir: str) -> Scorer:
    """The configured model, else the shipped default, else rules only (logged)."""
    if model_dir or (default_model_dir() / MODEL_FILE).exists():
        return Scorer.load(model_dir or None)
    log.warning("no model configured and none shipped: detectors only (run `twinguard train`)")
    return Scorer.rules_only()


def topic_source(cfg: Config, topic: str, idle: IdleStop | None = None) -> KafkaBatchSource:
    return KafkaBatchSource(cfg.kafka.client_settings(), topic, cfg.kafka.consume_batch,
                            cfg.kafka.poll_timeout_s, idle, cfg.kafka.group_id, lag=record_lag)


def kafka_source(cfg: Config, idle: IdleStop | None = None) -> KafkaBatchSource:
    return topic_source(cfg, cfg.topics.telemetry, idle)


def activity_source(cfg: Config, idle: IdleStop | None = None) -> KafkaBatchSource:
    return topic_source(cfg, cfg.topics.activity, idle)


def results_source(cfg: Config, idle: IdleStop | None = None) -> KafkaBatchSource:
    """What `twinguard respond` did (action_results): the twins show each device's containment."""
    return topic_source(cfg, cfg.topics.action_results, idle)


def read_topics(cfg: Config) -> list[str]:
    """Every topic a `twinguard run` process reads: its three inputs and the topics its reader
    threads follow (checked before start, so a missing one is named in one line)."""
    return [cfg.topics.telemetry, cfg.topics.activity, cfg.topics.action_results,
            *adaptive.required_topics(cfg)]


def follow_intel(cfg: Config, rt: Runtime) -> IntelReader | None:
    """Keep the runtime's intel table current from the intel topic (one reader per process)."""
    if not cfg.intel.read_topic:
        return None
    return start_intel_reader(cfg.kafka.client_settings(), cfg.topics.intel, cfg.topics.deadletter,
                              rt.engine.intel, cfg.intel.catch_up_timeout_s, cfg.intel.limits())


def kafka_sink(cfg: Config, recovery: bool | None = None) -> KafkaOutSink:
    """`recovery`: whether Bytewax recovery is on, if the caller knows. Under `python -m
    bytewax.run ... -r DIR` it is on without this code seeing it, so unknown means confirm."""
    return KafkaOutSink(cfg.kafka.client_settings(), cfg.topics.all(),
                        confirm=recovery is not False)


Decoded = DecodeOut | ActivityOut | ResultOut


def decode_step(rt: Runtime, raw: RawBatch) -> Decoded:
    """Telemetry, activity or action results by the batch's topic: one path, so a shard sees them
    in input order."""
    if rt.engine.intel.failure is not None:  # never run on silently with intel frozen or empty
        raise RuntimeError(f"{rt.engine.intel.failure}; restart `twinguard run` once the cause is fixed")
    out: Decoded
    if (failure := adaptive.reader_failure(rt.engine)) is not None:
        raise RuntimeError(f"{failure}; restart `twinguard run` once the cause is fixed")
    if raw.topic == rt.cfg.topics.activity:
        out = decode_activity(raw, rt.decode)
    elif raw.topic == rt.cfg.topics.action_results:
        out = decode_results(raw, rt.decode)
    else:
        out = decode_batch(raw, rt.types, rt.keys, rt.decode)
    notes = rt.brake.observe(raw.topic, raw.partition, raw.keys, out.rejected, out.last_reason)
    if notes:
        out.errs = mark_quarantined(out.errs, notes)
    return out


def _counted_decode(rt: Runtime, raw: RawBatch) -> Decoded:
    """decode_step with the batch counted as input (here, not in decode_step: the offline flow
    and the start-up warm-up share decode_step and must not count)."""
    count_input(raw)
    return decode_step(rt, raw)


def by_shard(shards: int, out: Decoded) -> list[tuple[str, ShardItem]]:
    if isinstance(out, ActivityOut | ResultOut):
        return list(out.by_device(shards))
    return [(str(s), b) for s, b in out.oks.split_by_shard()]


def by_user(shards: int, out: Decoded) -> list[tuple[str, ActivityBatch]]:
    return out.by_user(shards) if isinstance(out, ActivityOut) else []


def build_flow(cfg: Config | None = None, source: Source[RawBatch] | None = None,
               sink: Sink[OutMsg] | None = None, runtime: Runtime | None = None,
               activity: Source[RawBatch] | None = None,
               responses: Source[RawBatch] | None = None, snapshots: bool = True) -> Dataflow:
    """telemetry -> decode (-> dead letters) -> shard -> twin/window/detect/score -> outputs;
    activity -> decode -> the device's shard (desired state, drift) + a user shard (insider);
    action results -> the device's shard (the twin's response state, operators/twin/response.py).

    Kafka by default; with an explicit telemetry `source`, activity comes only from `activity` or
    from batches of `source` whose topic is `topics.activity` (the embedded demo interleaves both).
    `snapshots` False only where recovery is known to be off (shard state is then not copied at
    every epoch close); under `python -m bytewax.run` it may be on without this code knowing."""
    cfg = cfg or load_config(os.environ.get("TWINGUARD_CONFIG"))
    rt = runtime or Runtime.from_config(cfg, live=source is None)
    standalone = runtime is None and source is None  # `python -m bytewax.run`: the whole process
    if standalone:  # as `twinguard run`: a wrong broker or topic fails now, in one line
        require_topics(cfg.kafka.client_settings(), read_topics(cfg), cfg.startup.broker_timeout_s)
        follow_intel(cfg, rt)
        adaptive.follow_adaptive(cfg, rt.engine)
        serve(cfg.metrics, rt.engine.scorer)
    flow = Dataflow("twinguard")
    raw = op.input("telemetry_in", flow, source or kafka_source(cfg))
    if activity is not None or source is None:
        acts_in = op.input("activity_in", flow, activity or activity_source(cfg))
        raw = op.merge("inputs", raw, acts_in)
    if responses is not None or source is None:  # the twins show what `respond` did to a device
        raw = op.merge("with_results", raw, op.input("results_in", flow, responses or results_source(cfg)))
    n = rt.cfg.pipeline.shards
    decoded = op.map("decode", raw, timed("decode", partial(_counted_decode, rt)))
    dead = op.flat_map("dead_letters", decoded, lambda d: d.errs)
    shards = op.flat_map("shard", decoded, partial(by_shard, n))

    def builder(resume: TwinStore | None) -> TimedLogic[ShardItem, OutMsg, TwinStore]:
        logic = ShardLogic(rt.engine, resume, rt.control, rt.cfg.activity, snapshots)
        CENSUS.add(logic)
        return TimedLogic("twin_shards", logic)

    analysed = op.stateful_batch("twin_shards", shards, builder)
    results = op.map("unkey", analysed, lambda kv: kv[1])
    users = op.stateful_batch("user_shards", op.flat_map("by_user", decoded, partial(by_user, n)),
                              partial(_user_logic, rt))
    insider = op.map("unkey_users", users, lambda kv: kv[1])
    op.output("out", op.merge("all_out", results, dead, insider),
              counting_sink(sink or kafka_sink(cfg)))
    if standalone:
        heap.settle()
    return flow


def _user_logic(rt: Runtime, resume: tuple[UserStore, Reorder] | None
                ) -> TimedLogic[ActivityBatch, OutMsg, tuple[UserStore, Reorder]]:
    return TimedLogic("user_shards", UserLogic(rt.cfg.activity, rt.cfg.response.dry_run, resume))
