"""Follows the compacted model registry (a TopicFollower, operators/io/follow.py) and hot-swaps.

Keys: `NAME` is the version promoted for that name; `NAME@VERSION` keeps every promoted version
(what `twinguard model list` and `rollback` read). This reader acts on key `[models] name` only: it
loads and verifies the version in this thread, then swaps the process's ModelSlot. A record that
does not verify (file altered, other features or classes, unreadable location) is refused: a dead
letter with the reason, the slot's `refused` list, and the old model keeps scoring.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from twinguard.operators.detect.scoring import ModelError
from twinguard.operators.io.follow import RecordRejectedError, TopicFollower, start_following
from twinguard.operators.registry.settings import ModelsConfig
from twinguard.operators.registry.slot import ModelSlot
from twinguard.operators.registry.verify import load_record
from twinguard.schemas.messages import ModelRecord

log = logging.getLogger(__name__)
STAGE = "models"
_decode = msgspec.json.Decoder(ModelRecord)


class ModelReader(TopicFollower):
    stage = STAGE

    def __init__(self, settings: dict[str, Any], topic: str, deadletter_topic: str,
                 slot: ModelSlot, name: str, poll_s: float = 0.5) -> None:
        super().__init__(settings, topic, deadletter_topic, poll_s)
        self.slot, self.name = slot, name

    def handle(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        if key != self.name.encode() or value is None:
            return  # another name, a version's history record, or a deleted name: not ours
        try:
            rec = _decode.decode(value)
        except msgspec.DecodeError as e:
            raise RecordRejectedError(f"malformed model record: {e}") from None
        if rec.name != self.name:
            raise RecordRejectedError(f"model record under key {self.name!r} names {rec.name!r}")
        if rec.version == self.slot.current.version:
            return  # re-promoted as it runs (a restart reads its own promotion back)
        try:
            scorer = load_record(rec)
        except (ModelError, OSError, ValueError) as e:
            reason = f"model {rec.version} refused, {self.slot.current.version} keeps scoring: {e}"
            self.slot.refuse(rec.version, reason, now_ms)
            raise RecordRejectedError(reason) from None
        old = self.slot.current.version
        self.slot.swap(scorer)
        log.info("models: %s swapped in (was %s)", scorer.version, old)

    def failed(self, reason: str) -> None:
        self.slot.failure = reason

    def summary(self) -> str:
        return f"model {self.slot.current.version}"


def start_model_reader(settings: dict[str, Any], topic: str, deadletter_topic: str,
                       slot: ModelSlot, cfg: ModelsConfig) -> ModelReader:
    reader = ModelReader(settings, topic, deadletter_topic, slot, cfg.name)
    start_following(reader, cfg.catch_up_timeout_s)
    return reader
