"""Follows the compacted intel topic in a background thread and keeps an IntelTable current.

One reader per process (operators/intel/table.py says why intel is not part of the keyed dataflow),
a TopicFollower (operators/io/follow.py): it reads every partition from the beginning on each
start, so the table needs no recovery state. A malformed intel message goes to the dead-letter
topic with a reason and the reader goes on; a tombstone removes its key. If the reader itself stops
for good, it says so in `table.failure`, which the dataflow checks on every batch (a run never goes
on silently without intel).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from twinguard.operators.intel.table import (
    DEFAULT_LIMITS,
    IntelLimits,
    IntelRejectError,
    IntelTable,
    parse_intel,
)
from twinguard.operators.io.follow import TopicFollower, start_following

log = logging.getLogger(__name__)
STAGE = "intel"


class IntelReader(TopicFollower):
    """Daemon thread: consume intel -> table.apply -> table.publish; dead letters to Kafka."""

    stage = STAGE
    rejects = (IntelRejectError,)

    def __init__(self, settings: dict[str, Any], topic: str, deadletter_topic: str,
                 table: IntelTable, poll_s: float = 0.5, limits: IntelLimits = DEFAULT_LIMITS) -> None:
        super().__init__(settings, topic, deadletter_topic, poll_s)
        self.table, self.limits = table, limits

    def handle(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        entry = parse_intel(value, key, self.limits)
        name = key.decode("utf-8", "replace") if key is not None else None
        self.table.apply(name or (entry.indicator if entry else ""), entry)

    def publish(self) -> None:
        self.table.publish(drop_expired_at=int(time.time() * 1000))

    def failed(self, reason: str) -> None:
        self.table.failure = reason

    def summary(self) -> str:
        return f"{len(self.table)} entries"


def start_intel_reader(settings: dict[str, Any], topic: str, deadletter_topic: str,
                       table: IntelTable, catch_up_timeout_s: float,
                       limits: IntelLimits = DEFAULT_LIMITS) -> IntelReader:
    """Start following `topic`; wait (bounded) until what it held at start is in the table."""
    reader = IntelReader(settings, topic, deadletter_topic, table, limits=limits)
    start_following(reader, catch_up_timeout_s)
    return reader
