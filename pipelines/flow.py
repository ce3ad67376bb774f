"""The twinguard dataflow graph. Bytewax users: `python -m bytewax.run "pipelines.flow:build_flow()"`
(configuration from $TWINGUARD_CONFIG and TWINGUARD__* variables)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from operators.batches import OutMsg, RawBatch, TelemetryBatch
from operators.brake import RejectBrake
from operators.decode import DecodeConfig, DecodeOut, decode_batch
from operators.engine import EngineContext
from operators.integrity import KeyRing
from operators.intel import IntelTable
from operators.intel_reader import IntelReader, start_intel_reader
from operators.kafka_io import KafkaBatchSource, KafkaOutSink
from operators.scoring import MODEL_FILE, Scorer, default_model_dir
from operators.twin_operator import ShardLogic
from operators.twin_store import TwinStore
from pipelines.config import Config, load_config
from schemas.device_types import DeviceTypeTable, load_device_types

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

    @classmethod
    def from_config(cls, cfg: Config, scorer: Scorer | None = None) -> Runtime:
        types = load_device_types()
        keys = KeyRing.from_config(cfg.integrity.key_file, cfg.integrity.master_key_env)
        if scorer is None:
            scorer = load_scorer(cfg.detection.model_dir)
        p = cfg.pipeline
        intel = IntelTable.from_file(cfg.intel.file) if cfg.intel.file else IntelTable()
        return cls(cfg, types, keys,
                   EngineContext(types, scorer, p, cfg.detection, cfg.response, intel=intel,
                                 risk=cfg.risk),
                   DecodeConfig(p.shards, p.max_message_bytes, p.max_future_skew_ms),
                   RejectBrake(cfg.brake))


def load_scorer(model_dir: str) -> Scorer:
    """The configured model, else the shipped default, else rules only (logged)."""
    if model_dir or (default_model_dir() / MODEL_FILE).exists():
        return Scorer.load(model_dir or None)
    log.warning("no model configured and none shipped: detectors only (run `twinguard train`)")
    return Scorer.rules_only()


def kafka_source(cfg: Config, idle_s: float | None = None) -> KafkaBatchSource:
    return KafkaBatchSource(cfg.kafka.client_settings(), cfg.topics.telemetry,
                            cfg.kafka.consume_batch, cfg.kafka.poll_timeout_s, idle_s,
                            cfg.kafka.group_id)


def follow_intel(cfg: Config, rt: Runtime) -> IntelReader | None:
    """Keep the runtime's intel table current from the intel topic (one reader per process)."""
    if not cfg.intel.read_topic:
        return None
    return start_intel_reader(cfg.kafka.client_settings(), cfg.topics.intel, cfg.topics.deadletter,
                              rt.engine.intel, cfg.intel.catch_up_timeout_s)


def kafka_sink(cfg: Config) -> KafkaOutSink:
    return KafkaOutSink(cfg.kafka.client_settings(), cfg.topics.all())


def _decode(rt: Runtime, raw: RawBatch) -> DecodeOut:
    out = decode_batch(raw, rt.types, rt.keys, rt.decode)
    rt.brake.observe(raw.topic, raw.partition, out.rejected, out.last_reason)
    return out


def _by_shard(out: DecodeOut) -> list[tuple[str, TelemetryBatch]]:
    return [(str(s), b) for s, b in out.oks.split_by_shard()]


def build_flow(cfg: Config | None = None, source: Source[RawBatch] | None = None,
               sink: Sink[OutMsg] | None = None, runtime: Runtime | None = None) -> Dataflow:
    """telemetry -> decode (-> dead letters) -> shard -> twin/window/detect/score -> outputs."""
    cfg = cfg or load_config(os.environ.get("TWINGUARD_CONFIG"))
    rt = runtime or Runtime.from_config(cfg)
    if runtime is None and source is None:  # `python -m bytewax.run`: this process reads intel
        follow_intel(cfg, rt)
    flow = Dataflow("twinguard")
    raw = op.input("telemetry_in", flow, source or kafka_source(cfg))
    decoded = op.map("decode", raw, partial(_decode, rt))
    dead = op.flat_map("dead_letters", decoded, lambda d: d.errs)
    shards = op.flat_map("shard", decoded, _by_shard)

    def builder(resume: TwinStore | None) -> ShardLogic:
        return ShardLogic(rt.engine, resume)

    analysed = op.stateful_batch("twin_shards", shards, builder)
    results = op.map("unkey", analysed, lambda kv: kv[1])
    op.output("out", op.merge("all_out", results, dead), sink or kafka_sink(cfg))
    return flow
