"""`twinguard respond`: the Kafka loop around the Responder (actions + decisions in, results out)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException

from twinguard.operators.io.kafka import scan_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.admin import require_topics
from twinguard.pipelines.respond.actuators.base import Actuator
from twinguard.pipelines.respond.actuators.commands import CommandTopicActuator
from twinguard.pipelines.respond.actuators.mqtt import MqttActuator
from twinguard.pipelines.respond.actuators.webhook import WebhookActuator
from twinguard.pipelines.respond.clock import now_ms
from twinguard.pipelines.respond.fleet import FleetIndex
from twinguard.pipelines.respond.outbox import KafkaOutbox
from twinguard.pipelines.respond.responder import Responder, Source
from twinguard.schemas.device_types import load_device_types
from twinguard.schemas.messages import ActionResult

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 5.0
READ_ATTEMPTS = 10


def read_results(settings: dict[str, Any], topic: str) -> list[ActionResult]:
    """Every decodable record of the results topic in order (the latest per action id is its state)."""
    dec = msgspec.json.Decoder(ActionResult)
    for attempt in range(READ_ATTEMPTS):
        out = []
        try:
            for m in scan_topic(settings, topic, timeout_s=120):
                try:
                    out.append(dec.decode(m.value() or b""))
                except msgspec.DecodeError as e:
                    log.warning("skipping an undecodable record at %s/%s@%s: %s", topic,
                                m.partition(), m.offset(), e)
            return out
        except KafkaException:  # e.g. NOT_LEADER right after the topic was created
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(0.5)
    return []


def build_actuators(cfg: Config) -> tuple[dict[str, Actuator], dict[str, str]]:
    """The actuators the routes name, and for each one that cannot start, why (one line)."""
    made: dict[str, Actuator] = {}
    broken: dict[str, str] = {}
    settings = cfg.kafka.client_settings()
    for name in sorted(set(cfg.respond.routes.values())):
        try:
            if name == "mqtt":
                made[name] = MqttActuator(cfg.respond.mqtt)
            elif name == "commands":
                made[name] = CommandTopicActuator(settings, cfg.topics.commands)
            elif name == "webhook":
                made[name] = WebhookActuator(cfg.respond.webhook)
        except ValueError as e:
            broken[name] = str(e)
            log.warning("actuator %s unavailable: %s", name, e)
    return made, broken


def serve(cfg: Config, stop: threading.Event | None = None, max_seconds: float | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop`, or `max_seconds`); returns 0."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = cfg.kafka.client_settings()
    t = cfg.topics
    require_topics(settings, [t.actions, t.action_decisions, t.action_results, t.twins, t.commands,
                              t.deadletter])
    dry_run = cfg.response.dry_run
    actuators, broken = build_actuators(cfg) if not dry_run else ({}, {})
    fleet = FleetIndex(settings, t.twins)
    known = fleet.catch_up(timeout_s=30)
    out = KafkaOutbox(settings, t.action_results, t.deadletter)
    responder = Responder(cfg.respond, dry_run, actuators, broken, load_device_types(), fleet, out,
                          now_ms)
    responder.restore(read_results(settings, t.action_results))
    out.flush()
    log.info("respond: %s; %d devices known from %s; %d actions restored from %s; actuators %s",
             "DRY RUN (set [response] dry_run = false to act)" if dry_run else "EXECUTING",
             known, t.twins, responder.counts["restored"], t.action_results,
             ", ".join(sorted(actuators)) or "none")
    consumer = Consumer({**settings, "group.id": cfg.respond.group_id, "enable.auto.commit": True,
                         "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": False, "fetch.wait.max.ms": 50})
    consumer.subscribe([t.actions, t.action_decisions])
    started, last_report = time.monotonic(), time.monotonic()
    try:
        while not stop.is_set():
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            msgs = _next_messages(consumer, cfg.respond.tick_s)
            for m in msgs:
                if m.error() is not None:
                    log.warning("consume: %s", m.error())
                    continue
                src = Source(m.topic() or "", m.partition() or 0, m.offset() or 0, m.key())
                if src.topic == t.actions:
                    responder.on_action(m.value() or b"", src)
                else:
                    responder.on_decision(m.value() or b"", src)
            fleet.poll()
            responder.tick()
            out.flush()  # every record of this round acknowledged before its inputs count as done
            for m in msgs:
                if m.error() is None:
                    consumer.store_offsets(message=m)
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                log.info("respond: %s", progress(responder))
    finally:
        consumer.close()
        fleet.close()
        for a in actuators.values():
            a.close()
    log.info("respond stopped: %s", progress(responder))
    return 0


def _next_messages(consumer: Consumer, wait_s: float) -> list[Any]:
    """What has arrived (up to 500), else wait up to `wait_s` for the first one: consume() alone
    would sit out its whole timeout for a batch that never fills (seconds of latency at low rates)."""
    msgs: list[Any] = consumer.consume(500, 0)
    if msgs:
        return msgs
    first = consumer.poll(wait_s)
    return [first] if first is not None else []


def progress(r: Responder) -> str:
    """One line of counts: inputs, outcomes, and what is waiting."""
    c = r.counts
    waiting = sum(1 for s in r.state.values() if s.status == "pending")
    return (f"{c['actions']} actions ({c['duplicates']} already handled), {c['decisions']} decisions, "
            f"{c['succeeded']} succeeded, {c['failed']} failed, {c['skipped']} skipped, "
            f"{c['reverted']} reverted, {waiting} pending, {c['dead_lettered']} dead-lettered")
