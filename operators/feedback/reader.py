"""Follows the feedback topic (a TopicFollower, operators/io/follow.py) into a SuppressionTable.

Suppressions survive a restart because they are rebuilt from the topic: it is compacted by threat
id, so every live verdict is still there, and the reader reads it from the beginning on each start.
A record that is malformed, names a threat the pipeline could not have produced, or asks for a
suppression longer than [feedback] max_ttl_s is dead-lettered with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from twinguard.operators.detect.policy import output_id
from twinguard.operators.feedback.settings import FeedbackConfig
from twinguard.operators.feedback.table import SuppressionTable
from twinguard.operators.io.follow import RecordRejectedError, TopicFollower, start_following
from twinguard.schemas.features import NORMAL, THREAT_CLASSES
from twinguard.schemas.messages import Feedback

log = logging.getLogger(__name__)
STAGE = "feedback"
_decode = msgspec.json.Decoder(Feedback)


def parse_feedback(key: bytes | None, value: bytes, cfg: FeedbackConfig) -> tuple[Feedback, int]:
    """The verdict and the time its suppression ends; RecordRejectedError says what is wrong."""
    try:
        fb = _decode.decode(value)
    except msgspec.DecodeError as e:
        raise RecordRejectedError(f"malformed feedback: {e}") from None
    if key is not None and key.decode("utf-8", "replace") != fb.threat_id:
        raise RecordRejectedError(f"feedback key {key[:64]!r} is not its threat_id {fb.threat_id!r}")
    if fb.device_id is None or fb.threat is None or fb.model_version is None or fb.window_end is None:
        raise RecordRejectedError(
            f"feedback on {fb.threat_id} names an unknown threat: device_id, threat, model_version "
            "and window_end are required (use `twinguard feedback`, which copies them)")
    if fb.threat not in THREAT_CLASSES or fb.threat == NORMAL:
        raise RecordRejectedError(f"feedback on {fb.threat_id}: unknown threat class {fb.threat!r}")
    if output_id(fb.device_id, fb.threat, fb.model_version, str(fb.window_end)) != fb.threat_id:
        raise RecordRejectedError(
            f"feedback names an unknown threat {fb.threat_id!r}: its device, class, model version "
            "and window do not produce that id")
    if fb.scope == "cohort" and not fb.fw:
        raise RecordRejectedError(f"feedback on {fb.threat_id}: scope cohort needs the device's fw")
    ttl_ms = fb.ttl_ms or int(cfg.default_ttl_s * 1000)
    if ttl_ms > cfg.max_ttl_s * 1000:
        raise RecordRejectedError(f"feedback on {fb.threat_id}: ttl {ttl_ms // 1000} s exceeds "
                                  f"[feedback] max_ttl_s {cfg.max_ttl_s:g}")
    return fb, fb.ts + ttl_ms


class FeedbackReader(TopicFollower):
    """Daemon thread: feedback topic -> SuppressionTable (+ dead letters)."""

    stage = STAGE

    def __init__(self, settings: dict[str, Any], topic: str, deadletter_topic: str,
                 table: SuppressionTable, cfg: FeedbackConfig, poll_s: float = 0.5) -> None:
        super().__init__(settings, topic, deadletter_topic, poll_s)
        self.table, self.cfg = table, cfg

    def handle(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        if value is None:  # tombstone: the threat's verdict withdrawn
            if key is None:
                raise RecordRejectedError("feedback tombstone without a key")
            self.table.apply(key.decode("utf-8", "replace"), None)
            return
        fb, until = parse_feedback(key, value, self.cfg)
        self.table.apply(fb.threat_id, fb, until)

    def publish(self) -> None:
        self.table.publish(int(time.time() * 1000))

    def failed(self, reason: str) -> None:
        self.table.failure = reason

    def summary(self) -> str:
        return f"{len(self.table)} live verdicts"


def start_feedback_reader(settings: dict[str, Any], topic: str, deadletter_topic: str,
                          table: SuppressionTable, cfg: FeedbackConfig) -> FeedbackReader:
    reader = FeedbackReader(settings, topic, deadletter_topic, table, cfg)
    start_following(reader, cfg.catch_up_timeout_s)
    return reader
