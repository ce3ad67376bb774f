"""Decode and validate raw telemetry messages into a columnar batch; rejects become dead letters.

Every message ends either as a row of the batch or as a dead letter with a reason; nothing is dropped.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import msgspec

from twinguard.operators.batches import ColumnBuilder, OutMsg, RawBatch, TelemetryBatch
from twinguard.operators.deadletters import bounded_dead_letter, preview
from twinguard.operators.decode.bounded import decode_within
from twinguard.operators.decode.hashing import string_hash
from twinguard.operators.integrity.signatures import SIG_MISSING, SIG_OK, KeyRing
from twinguard.schemas.device_types import MAX_SIGNALS, DeviceTypeTable
from twinguard.schemas.messages import Telemetry, canonical_bytes

STAGE = "decode"
M = TypeVar("M")  # the message Struct a decoder yields
_decoder = msgspec.json.Decoder(Telemetry)
_NAN_ROW = [math.nan] * MAX_SIGNALS
# Any signal's magnitude bound: far beyond every physical reading, small enough that squares and
# sums of squares over windows stay finite even in float32 (the model scores float32)
MAX_SIGNAL_ABS = 1e12


class RejectError(ValueError):
    """A message breaks the telemetry contract; str(error) is the dead-letter reason."""


@dataclass(frozen=True)
class DecodeConfig:
    shards: int
    max_message_bytes: int
    max_future_skew_ms: int


@dataclass
class DecodeOut:
    oks: TelemetryBatch
    errs: list[OutMsg]
    rejected: list[bool]  # per input message, in order (for the dead-letter brake)
    last_reason: str = ""


def decode_batch(raw: RawBatch, types: DeviceTypeTable, keys: KeyRing, cfg: DecodeConfig,
                 now_ms: int | None = None) -> DecodeOut:
    """Columns for the valid messages of `raw`, a dead letter for each invalid one."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cols, errs, rejected, reason = ColumnBuilder(), [], [False] * len(raw), ""
    for i, value in enumerate(raw.values):
        offset = int(raw.offsets[i])
        try:
            ev = _parse(value, raw.keys[i], cfg, types, now_ms)
            _append(cols, ev, value or b"", raw.partition, offset, types, keys, cfg)
        except Exception as e:  # noqa: BLE001 - bad input never stops the flow: reason, dead letter
            reason = reject_reason(e)
            errs.append(dead_letter(raw, i, STAGE, reason, now_ms))
            rejected[i] = True
    return DecodeOut(cols.build(), errs, rejected, reason)


def reject_reason(error: Exception) -> str:
    """The dead-letter reason for an exception raised while decoding one message: a RejectError's
    own text, else what failed (a decoder bug must dead-letter the message, not stop the flow)."""
    if isinstance(error, RejectError):
        return str(error)
    return f"decoder failed on this message: {type(error).__name__}: {str(error)[:200]}"


def decode_checked(decoder: msgspec.json.Decoder[M], value: bytes | None, key: bytes | None,
                   cfg: DecodeConfig, what: str) -> M:
    """One message through the checks every input topic shares: present, within the size limit,
    not nested too deep (checked before parsing: the parser recurses), valid JSON of the schema,
    and keyed by its own device_id; a RejectError says which failed."""
    msg = decode_bounded(decoder, value, cfg, what)
    device_id: str = getattr(msg, "device_id")  # noqa: B009 - every keyed schema has one
    if key is not None and key != device_id.encode():
        raise RejectError(f"message key {preview(key, 64)!r} does not match device_id "
                          f"{device_id!r}")
    return msg


def decode_bounded(decoder: msgspec.json.Decoder[M], value: bytes | None, cfg: DecodeConfig,
                   what: str) -> M:
    """decode_checked without the key check (topics keyed by something else than the device)."""
    if value is None or len(value) == 0:
        raise RejectError(f"empty message (no value): expected a JSON {what} object")
    return decode_within(decoder, value, cfg.max_message_bytes, "pipeline.max_message_bytes",
                         "message", RejectError)


def _parse(value: bytes | None, key: bytes | None, cfg: DecodeConfig, types: DeviceTypeTable,
           now_ms: int) -> Telemetry:
    ev = decode_checked(_decoder, value, key, cfg, "telemetry")
    if ev.type not in types.index:
        raise RejectError(f"unknown device type {ev.type!r} (known: {', '.join(types.index)})")
    ts = epoch_ms(ev.ts)
    if ts > now_ms + cfg.max_future_skew_ms:
        raise RejectError(f"ts {ts} is {(ts - now_ms) // 1000} s in the future (limit "
                          f"pipeline.max_future_skew_ms={cfg.max_future_skew_ms})")
    return msgspec.structs.replace(ev, ts=ts) if ts is not ev.ts else ev


def _check_signature(ev: Telemetry, value: bytes, keys: KeyRing) -> int:
    """SIG_OK/MISSING/BAD. Fast path: a producer that sends canonical JSON signed exactly the
    received bytes minus the `sig` member; anything else is re-encoded canonically first."""
    if not ev.sig:
        return SIG_MISSING
    member = b'"sig":"' + ev.sig.encode() + b'"'
    stripped = value.replace(b"," + member, b"", 1)
    if len(stripped) == len(value):
        stripped = value.replace(member + b",", b"", 1)
    if len(stripped) < len(value) and keys.check(ev.device_id, stripped, ev.sig) == SIG_OK:
        return SIG_OK
    return keys.check(ev.device_id, canonical_bytes(ev), ev.sig)


def _append(cols: ColumnBuilder, ev: Telemetry, value: bytes, partition: int, offset: int,
            types: DeviceTypeTable, keys: KeyRing, cfg: DecodeConfig) -> None:
    t = types.index[ev.type]
    row = _signal_row(ev, types.signal_index[t])
    sig_state = _check_signature(ev, value, keys)
    net, auth = ev.net, ev.auth
    src = net.src_ip if net is not None else None
    port = net.dst_port if net is not None and net.dst_port is not None else -1
    fw_unknown = int(ev.fw is not None and ev.fw not in types.firmware[t])
    shard = zlib.crc32(ev.device_id.encode()) % cfg.shards
    assert isinstance(ev.ts, int)  # noqa: S101 - _parse normalised it
    cols.device_ids.append(ev.device_id)
    cols.src_ips.append(src)
    dst = net.dst_ip if net is not None else None
    principal = auth.principal if auth is not None else None
    cols.dst_ips.append(dst)
    cols.principals.append(principal)
    cols.fws.append(ev.fw)
    cols.raw.append(value)
    cols.ints.append((shard, t, ev.ts, ev.seq, port, string_hash(src), sig_state, fw_unknown,
                      partition, offset, string_hash(dst), string_hash(principal)))
    cols.floats.append((
        float(net.bytes_in) if net else 0.0, float(net.bytes_out) if net else 0.0,
        float(net.connections) if net else 0.0, float(auth.failures) if auth else 0.0,
        float(auth.successes) if auth else 0.0))
    cols.signals.append(row)


def _signal_row(ev: Telemetry, index: dict[str, int]) -> list[float]:
    row = list(_NAN_ROW)
    for name, v in ev.signals.items():
        k = index.get(name)
        if k is None:
            raise RejectError(f"signal {name!r} is not defined for device type {ev.type!r} "
                              f"(known: {', '.join(index)})")
        if not math.isfinite(v):
            raise RejectError(f"signal {name!r} is not a finite number: {v!r}")
        if abs(v) > MAX_SIGNAL_ABS:
            raise RejectError(f"signal {name!r} = {v!r} is beyond ±{MAX_SIGNAL_ABS:.0e}, the bound "
                              "on any signal (no sensor reads that; features would overflow)")
        row[k] = v
    return row


def epoch_ms(ts: int | datetime) -> int:
    """A schema `ts` (epoch ms or a timezone-aware RFC 3339 time) as epoch milliseconds."""
    if isinstance(ts, int):
        return ts
    if ts.tzinfo is None:
        raise RejectError(f"ts {ts.isoformat()!r} has no timezone: use RFC 3339 with Z or an offset")
    return int(ts.timestamp() * 1000)


def dead_letter(raw: RawBatch, i: int, stage: str, reason: str, now_ms: int) -> OutMsg:
    """A dead-letter message for message i: where it came from, its (bounded) original bytes."""
    return bounded_dead_letter(raw.topic, raw.partition, int(raw.offsets[i]), raw.keys[i],
                               raw.values[i] or b"", stage, reason, now_ms)
