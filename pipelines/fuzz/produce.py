"""Producing a fuzz run's input and remembering where each message landed (topic, partition, offset),
so every dead letter can be traced to the kind of input that caused it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

from twinguard.operators.io.kafka import producer
from twinguard.pipelines.fuzz.model import FuzzError, Kind

# the client must accept the 10 MB message (lz4 takes it under the broker's limit)
MAX_MESSAGE_BYTES = 32_000_000
FLUSH_TIMEOUT_S = 120.0


@dataclass
class Produced:
    """Where each delivered message went, per kind and role; what the broker refused."""

    kind_at: dict[tuple[str, int, int], str] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, role) -> delivered
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, reason) -> count

    def delivered(self, kind: str, roles: tuple[str, ...] = ("telemetry", "activity")) -> int:
        return sum(n for (k, r), n in self.counts.items() if k == kind and r in roles)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def produce(settings: dict[str, Any], topics: dict[str, str], kinds: list[Kind]) -> Produced:
    """Every message of every kind, in order, to the topic of its role; waits for the broker."""
    out = Produced()
    p = producer(settings, **{"message.max.bytes": MAX_MESSAGE_BYTES, "log_level": 0})

    def report(kind: str, role: str) -> Any:
        def cb(err: Any, msg: Any) -> None:
            if err is not None:
                out.refused[(kind, err.str())] += 1
                return
            out.kind_at[(msg.topic(), msg.partition(), msg.offset())] = kind
            out.counts[(kind, role)] += 1
        return cb

    for k in kinds:
        callbacks = {role: report(k.name, role) for role in topics}
        for m in k.messages:
            while True:
                try:
                    p.produce(topics[m.role], m.value, m.key, on_delivery=callbacks[m.role])
                    break
                except BufferError:
                    p.poll(0.1)
                except KafkaException as e:  # refused by the client itself (e.g. too large)
                    out.refused[(k.name, str(e.args[0].str()))] += 1
                    break
        p.poll(0)
    left = p.flush(FLUSH_TIMEOUT_S)
    if left:
        raise FuzzError(f"{left} input messages still undelivered after {FLUSH_TIMEOUT_S:.0f} s")
    return out
