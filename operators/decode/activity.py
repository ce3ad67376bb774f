"""Decode and validate operator activity (commands, logins) into batches; rejects become dead letters.

An accepted message goes twice downstream: to its device's state shard (desired state, drift, the
twin's `commands` count, which is how it is accounted for) and to its user's shard (insider behaviour).
Both use crc32 like telemetry, so a device's commands meet its telemetry in the same ShardEngine.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.telemetry import (
    MAX_SIGNAL_ABS,
    DecodeConfig,
    RejectError,
    dead_letter,
    decode_checked,
    epoch_ms,
    reject_reason,
)
from twinguard.schemas.messages import Activity

STAGE = "decode_activity"
SET_ACTION = "set"  # params = signal -> numeric set-point; the twin's desired state
_decoder = msgspec.json.Decoder(Activity)
I64 = npt.NDArray[np.int64]


@dataclass
class ActivityBatch:
    """Accepted activity messages as columns; row i keeps its original bytes for later rejects."""

    topic: str
    device_ids: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    params: list[dict[str, float | str]] = field(default_factory=list)
    src_ips: list[str | None] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    partition: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.device_ids)

    def take(self, idx: list[int]) -> ActivityBatch:
        out = ActivityBatch(self.topic)
        for name in ("device_ids", "users", "actions", "params", "src_ips", "ts", "partition",
                     "offset", "raw"):
            col = getattr(self, name)
            setattr(out, name, [col[i] for i in idx])
        return out

    def split(self, keys: list[str], shards: int) -> list[tuple[str, ActivityBatch]]:
        """(str(crc32(key) % shards), rows with that shard) for every shard present, rows in order."""
        groups: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(zlib.crc32(k.encode()) % shards, []).append(i)
        return [(str(s), self.take(rows)) for s, rows in sorted(groups.items())]

    def dead_letter(self, i: int, stage: str, reason: str, now_ms: int) -> OutMsg:
        """A dead letter for row i carrying its original bytes."""
        raw = RawBatch(self.topic, self.partition[i], np.array([self.offset[i]]),
                       [self.device_ids[i].encode()], [self.raw[i]])
        return dead_letter(raw, 0, stage, reason, now_ms)


@dataclass
class ActivityOut:
    oks: ActivityBatch
    errs: list[OutMsg]
    rejected: list[bool]
    last_reason: str = ""

    def by_device(self, shards: int) -> list[tuple[str, ActivityBatch]]:
        return self.oks.split(self.oks.device_ids, shards)

    def by_user(self, shards: int) -> list[tuple[str, ActivityBatch]]:
        return self.oks.split(self.oks.users, shards)


def decode_activity(raw: RawBatch, cfg: DecodeConfig, now_ms: int | None = None) -> ActivityOut:
    """Rows for the valid activity messages of `raw`, a dead letter for each invalid one."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out, errs, rejected, reason = ActivityBatch(raw.topic), [], [False] * len(raw), ""
    for i, value in enumerate(raw.values):
        try:
            a, ts = _parse(value, raw.keys[i], cfg, now_ms)
        except Exception as e:  # noqa: BLE001 - bad input never stops the flow: reason, dead letter
            reason = reject_reason(e)
            errs.append(dead_letter(raw, i, STAGE, reason, now_ms))
            rejected[i] = True
            continue
        out.device_ids.append(a.device_id)
        out.users.append(a.user)
        out.actions.append(a.action)
        out.params.append(a.params)
        out.src_ips.append(a.src_ip)
        out.ts.append(ts)
        out.partition.append(raw.partition)
        out.offset.append(int(raw.offsets[i]))
        out.raw.append(value or b"")
    return ActivityOut(out, errs, rejected, reason)


def _parse(value: bytes | None, key: bytes | None, cfg: DecodeConfig, now_ms: int
           ) -> tuple[Activity, int]:
    a = decode_checked(_decoder, value, key, cfg, "activity")
    ts = epoch_ms(a.ts)
    if ts > now_ms + cfg.max_future_skew_ms:
        raise RejectError(f"ts {ts} is {(ts - now_ms) // 1000} s in the future (limit "
                          f"pipeline.max_future_skew_ms={cfg.max_future_skew_ms})")
    if a.action == SET_ACTION:
        _check_set(a.params)
    return a, ts


def _check_set(params: dict[str, float | str]) -> None:
    """A `set` command needs at least one signal and finite numeric set-points."""
    if not params:
        raise RejectError("action 'set' needs params {signal: set-point}, got none")
    for name, v in params.items():
        if isinstance(v, str) or not math.isfinite(v) or abs(v) > MAX_SIGNAL_ABS:
            raise RejectError(f"action 'set': set-point for {name!r} must be a finite number within "
                              f"±{MAX_SIGNAL_ABS:.0e}, got {v!r}")
