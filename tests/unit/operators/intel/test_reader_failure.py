"""A reader that stops for good says so: the table carries the reason, the dataflow stops on its next
batch with that one line (it ran on with intel silently empty, issue 18 item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from twinguard.operators.batches import RawBatch
from twinguard.operators.intel.reader import start_intel_reader
from twinguard.operators.intel.table import IntelTable
from twinguard.pipelines.flow import Runtime, decode_step


def test_a_reader_that_cannot_start_reports_through_the_table() -> None:
    table = IntelTable()
    settings = {"bootstrap.servers": "127.0.0.1:1", "no.such.librdkafka.setting": "1"}
    reader = start_intel_reader(settings, "intel", "dead", table, catch_up_timeout_s=30)
    reader.join(30)
    assert not reader.is_alive()
    assert table.failure is not None and table.failure.startswith("intel reader for intel stopped")
    assert "no.such.librdkafka.setting" in table.failure


def test_the_dataflow_stops_on_a_failed_reader_with_its_reason(runtime: Runtime) -> None:
    raw = RawBatch(runtime.cfg.topics.telemetry, 0, np.array([0]), [b"k"], [b"{}"])
    decode_step(runtime, raw)  # a healthy reader: decoding goes on
    runtime.engine.intel.failure = "intel reader for t stopped: KafkaException: boom"
    try:
        with pytest.raises(RuntimeError, match="intel reader for t stopped: KafkaException: boom"):
            decode_step(runtime, raw)
    finally:
        runtime.engine.intel.failure = None
