"""Real broker: the intel topic drives the intel table (entries, tombstones, expiry, later updates);
malformed intel is dead-lettered with the reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.support.intel import intel_messages
from tests.support.kafka import produce
from twinguard.operators.intel.reader import start_intel_reader
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Poll until `condition` holds; fail naming `what` once `deadline_s` has passed."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_intel_reader_applies_entries_tombstones_and_dead_letters_bad_ones(unique_topics: Config
                                                                            ) -> None:
    cfg = unique_topics
    now_ms = int(time.time() * 1000)
    produce(cfg, cfg.topics.intel, intel_messages(now_ms))
    table = IntelTable()
    reader = start_intel_reader(cfg.kafka.client_settings(), cfg.topics.intel, cfg.topics.deadletter,
                                table, catch_up_timeout_s=60)
    try:
        assert reader.caught_up.is_set() and reader.rejected == 1
        idx = table.current
        assert idx.lookup_ip("203.0.113.9", now_ms).severity == "critical"  # type: ignore[union-attr]
        assert idx.lookup_firmware("ip_camera", "5.51.2", now_ms) is not None
        assert idx.lookup_firmware("thermostat", "4.3.0", now_ms) is None  # tombstoned
        assert idx.lookup_firmware("smart_meter", "7.0.3", now_ms) is None  # expired
        # a later update reaches the running table
        produce(cfg, cfg.topics.intel, [(b"10.9.9.9", b'{"indicator": "10.9.9.9", "kind": "ip"}')])
        wait_for(lambda: table.current.lookup_ip("10.9.9.9", now_ms) is not None, "a new entry")
    finally:
        reader.stop()
        reader.join(10)
    dead = [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.deadletter)]
    assert [(d["stage"], d["key"], d["topic"]) for d in dead] == [("intel", "oops", cfg.topics.intel)]
    assert dead[0]["reason"].startswith("malformed JSON")
