"""Result records and dead letters to Kafka; a durable write waits for the broker's acknowledgement."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from confluent_kafka import Producer

from twinguard.pipelines.respond.clock import now_ms
from twinguard.pipelines.respond.responder import Source
from twinguard.pipelines.text import printable
from twinguard.schemas.messages import ActionResult, DeadLetter

STAGE = "respond"


class KafkaOutbox:
    """Results keyed by action id (compacted topic = latest state); dead letters keyed as received."""

    def __init__(self, settings: dict[str, Any], results_topic: str, deadletter_topic: str) -> None:
        self.results_topic, self.deadletter_topic = results_topic, deadletter_topic
        self._p = Producer({**settings, "acks": "all", "enable.idempotence": True, "linger.ms": 2})
        self._enc = msgspec.json.Encoder()
        self._errors: list[str] = []

    def result(self, rec: ActionResult, durable: bool) -> None:
        self._produce(self.results_topic, rec.action_id.encode(), self._enc.encode(rec))
        if durable:
            self.flush()

    def dead_letter(self, src: Source, value: bytes, reason: str) -> None:
        dl = DeadLetter(topic=src.topic, partition=src.partition, offset=src.offset,
                        key=printable(src.key.decode(errors="replace"))[:200] if src.key else None,
                        stage=STAGE, reason=reason[:500], value_b64=base64.b64encode(value).decode(),
                        value_preview=printable(value[:200].decode(errors="replace")),
                        rejected_at=now_ms())
        self._produce(self.deadletter_topic, src.key or b"", self._enc.encode(dl))

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything produced is acknowledged; a failure stops the service loudly."""
        left = self._p.flush(timeout_s)
        if left or self._errors:
            raise RuntimeError(f"respond: {left} records to {self.results_topic}/"
                               f"{self.deadletter_topic} not acknowledged "
                               f"({'; '.join(self._errors[:3]) or 'timed out'}): check the broker")

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                self._errors.append(err.str())
        while True:
            try:
                self._p.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                self._p.poll(0.1)
        self._p.poll(0)
