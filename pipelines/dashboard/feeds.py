"""Where the dashboard's data comes from: the live topics (threats, twins, the dataflow's lag) or a
finished `twinguard demo` folder (its JSON-lines outputs)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from twinguard.operators.io.kafka import KafkaFatalError, consumer_lag, quiet_settings
from twinguard.pipelines.config import Config
from twinguard.pipelines.consume.reader import threats
from twinguard.pipelines.dashboard.state import DashboardState
from twinguard.schemas.messages import ThreatEvent, TwinState

log = logging.getLogger(__name__)
_twin = msgspec.json.Decoder(TwinState)
_threat = msgspec.json.Decoder(ThreatEvent)
LAG_EVERY_S = 5.0
RETRY_S = 2.0


def follow_kafka(cfg: Config, state: DashboardState, stop: threading.Event) -> list[threading.Thread]:
    """Start the three feeds of a live dashboard as daemon threads (they end when `stop` is set)."""
    jobs: list[tuple[str, Callable[[], None]]] = [
        ("threats", lambda: _follow_threats(cfg, state, stop)),
        ("twins", lambda: _follow_twins(cfg, state, stop)),
        ("lag", lambda: _poll_lag(cfg, state, stop)),
    ]
    threads = [threading.Thread(target=_logged(name, fn, stop), name=f"dashboard-{name}", daemon=True)
               for name, fn in jobs]
    for t in threads:
        t.start()
    return threads


def _logged(name: str, fn: Callable[[], None], stop: threading.Event) -> Callable[[], None]:
    """A feed that fails says why and starts again (the page de-duplicates what it re-reads): the
    page outlives broker restarts and a topic created after the dashboard started."""
    def run() -> None:
        last = ""
        while not stop.is_set():
            try:
                fn()
            except (KafkaException, KafkaFatalError) as e:
                if str(e) != last:  # once per distinct cause, not once per retry
                    log.warning("dashboard %s feed: %s; retrying every %.0f s", name, e, RETRY_S)
                last = str(e)
                stop.wait(RETRY_S)
    return run


def _follow_threats(cfg: Config, state: DashboardState, stop: threading.Event) -> None:
    reader = threats(cfg, follow=True, stop=stop)
    state.reader_stats = reader.stats  # its duplicates and unreadable records show on the page
    for ev in reader:
        state.add_threat(ev)


def _follow_twins(cfg: Config, state: DashboardState, stop: threading.Event) -> None:
    """The compacted twins topic from its start, then every update: the last value per key wins."""
    topic = cfg.topics.twins
    c = Consumer({**cfg.kafka.client_settings(), **quiet_settings("dashboard-twins"),
                  "group.id": f"twinguard-dashboard-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        meta = c.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None:
            msg = f"topic {topic!r} not found (create the topics with `twinguard topics create`)"
            raise KafkaFatalError(msg)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        while not stop.is_set():
            for m in c.consume(2000, 0.2):
                if m.error() is None:
                    _apply_twin(state, m.key(), m.value())
    finally:
        c.close()


def _apply_twin(state: DashboardState, key: bytes | None, value: bytes | None) -> None:
    if not value:
        if key is not None:
            state.put_twin(key.decode("utf-8", "replace"), None)
        return
    try:
        twin = _twin.decode(value)
    except msgspec.DecodeError:
        state.count("unreadable_twins")
        return
    state.put_twin(twin.device_id, twin)


def _poll_lag(cfg: Config, state: DashboardState, stop: threading.Event) -> None:
    """The dataflow's lag (group `kafka.group_id`) on its input topics, every LAG_EVERY_S."""
    inputs = (cfg.topics.telemetry, cfg.topics.activity)
    while not stop.is_set():
        lag: dict[str, int | None] = {}
        for topic in inputs:
            try:
                lag[topic] = consumer_lag(cfg.kafka.client_settings(), topic, cfg.kafka.group_id,
                                          attempts=1)
            except (KafkaException, KeyError):
                lag[topic] = None  # unknown (topic missing or broker busy): shown as such
        state.set_lag(lag, f"messages behind for consumer group {cfg.kafka.group_id!r}")
        stop.wait(LAG_EVERY_S)


def load_demo(out_dir: Path, state: DashboardState) -> None:
    """A `twinguard demo` folder: its threats and the latest twin per device (no lag: no Kafka)."""
    for name in ("threats.jsonl", "twins.jsonl"):
        if not (out_dir / name).is_file():
            msg = f"{out_dir / name} not found: point --from-dir at a `twinguard demo --out` folder"
            raise FileNotFoundError(msg)
    for line in (out_dir / "twins.jsonl").read_bytes().splitlines():
        if line.strip():
            _apply_twin(state, None, line)
    for line in (out_dir / "threats.jsonl").read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            state.add_threat(_threat.decode(line))
        except msgspec.DecodeError:
            state.count("unreadable_threats")
    state.set_lag({}, "no consumer lag: the demo runs from files, not Kafka")
