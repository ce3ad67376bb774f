"""Decode twinguard.action_results (what `twinguard respond` did) for the twins: each record goes to
its device's state shard, which shows the device's containment in its twin.

The topic is keyed by action id, not device id, so records are routed by `request.device_id`
(crc32 like telemetry and activity: the same ShardEngine as the device's telemetry). A record that
does not decode is dead-lettered like any bad input.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import msgspec

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.telemetry import (
    DecodeConfig,
    dead_letter,
    decode_bounded,
    reject_reason,
)
from twinguard.schemas.messages import ActionResult

STAGE = "decode_action_results"
_decoder = msgspec.json.Decoder(ActionResult)


@dataclass
class ResultBatch:
    """Decoded action results, in partition order, with the device each one is about."""

    device_ids: list[str] = field(default_factory=list)
    records: list[ActionResult] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class ResultOut:
    oks: ResultBatch
    errs: list[OutMsg]
    rejected: list[bool]
    last_reason: str = ""

    def by_device(self, shards: int) -> list[tuple[str, ResultBatch]]:
        """(str(crc32(device) % shards), its records) per shard present, records in order."""
        groups: dict[int, ResultBatch] = {}
        for d, rec in zip(self.oks.device_ids, self.oks.records, strict=True):
            g = groups.setdefault(zlib.crc32(d.encode()) % shards, ResultBatch())
            g.device_ids.append(d)
            g.records.append(rec)
        return [(str(s), b) for s, b in sorted(groups.items())]


def decode_results(raw: RawBatch, cfg: DecodeConfig, now_ms: int | None = None) -> ResultOut:
    """The decodable records of `raw`, a dead letter for each one that is not."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out, errs, rejected, reason = ResultBatch(), [], [False] * len(raw), ""
    for i, value in enumerate(raw.values):
        try:
            rec = decode_bounded(_decoder, value, cfg, "action result")
        except Exception as e:  # noqa: BLE001 - bad input never stops the flow: reason, dead letter
            reason = reject_reason(e)
            errs.append(dead_letter(raw, i, STAGE, reason, now_ms))
            rejected[i] = True
            continue
        out.device_ids.append(rec.request.device_id)
        out.records.append(rec)
    return ResultOut(out, errs, rejected, reason)
