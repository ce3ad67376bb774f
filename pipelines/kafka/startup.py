"""`[startup]`: how long a dataflow waits for Kafka before it gives up with one line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StartupConfig:
    # unreachable brokers at start-up (wrong address, Kafka down): fail after this long; once
    # running, outages are retried without limit
    broker_timeout_s: float = 15.0
