"""Device types and fleet sizes from the compacted twins topic (for policy and the blast-radius guard)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition


class _TwinType(msgspec.Struct):
    device_type: str


class FleetIndex:
    """Follows the twins topic from its start without a consumer group: device id -> type."""

    def __init__(self, settings: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._types: dict[str, str] = {}
        self._sizes: Counter[str] = Counter()
        self._dec = msgspec.json.Decoder(_TwinType)
        self._c = Consumer({**settings, "group.id": "twinguard-respond-fleet",
                            "enable.auto.commit": False, "enable.partition.eof": False})
        meta = self._c.list_topics(topic, timeout=30).topics[topic]
        self._parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self._c.assign(self._parts)

    def type_of(self, device_id: str) -> str | None:
        return self._types.get(device_id)

    def sizes(self) -> Mapping[str, int]:
        return self._sizes

    def catch_up(self, timeout_s: float) -> int:
        """Read up to the end offsets seen now (or until the deadline); the devices known."""
        deadline = time.monotonic() + timeout_s
        ends = self._ends(deadline)
        while time.monotonic() < deadline:
            self.poll(0.2)
            pos = {tp.partition: tp.offset for tp in self._c.position(self._parts)}
            if all(e == 0 or pos.get(p, -1) >= e for p, e in ends.items()):
                break
        return len(self._types)

    def _ends(self, deadline: float) -> dict[int, int]:
        """End offsets; a fresh topic may briefly answer NOT_LEADER, so ask again until the deadline."""
        while True:
            try:
                return {tp.partition: self._c.get_watermark_offsets(tp, timeout=10)[1]
                        for tp in self._parts}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Fold newly arrived twins (a device that changes type is counted once, under the new one)."""
        for m in self._c.consume(5000, timeout_s):
            key = m.key()
            if m.error() is not None or key is None:
                continue
            try:
                dtype = self._dec.decode(m.value() or b"").device_type
            except msgspec.DecodeError:
                continue  # the dataflow wrote it: a twin that does not decode is not ours to judge
            device = key.decode(errors="replace")
            old = self._types.get(device)
            if old != dtype:
                if old is not None:
                    self._sizes[old] -= 1
                self._types[device] = dtype
                self._sizes[dtype] += 1

    def close(self) -> None:
        self._c.close()
