"""Columnar batch decode: the Numba parser (operators/fastjson.py) for messages in the shape producers
send, the reference decoder (operators/decode.py) for every message the parser is not certain about.

Same rows in the same order, same dead letters and reasons as `decode.decode_batch` (a property test
holds the two together); per event it costs a few Python operations per *batch* instead of a typed
msgspec decode, validation and tuple building per message. Strings are decoded once per distinct value
per batch; device-id hashing (shard) and HMAC key set-up happen once per distinct device.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from operators import fastjson as fj
from operators.batches import RawBatch, TelemetryBatch
from operators.decode import DecodeConfig, DecodeOut
from operators.decode import decode_batch as reference_decode
from operators.integrity import SIG_BAD, SIG_MISSING, SIG_OK, KeyRing
from schemas.device_types import MAX_SIGNALS, DeviceTypeTable

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class TypeTables:
    """A DeviceTypeTable's names as the byte matrices the parser matches against."""

    names: U8
    name_lens: I64
    signal_names: U8  # [T, MAX_SIGNALS, width]
    signal_lens: I64  # [T, MAX_SIGNALS], 0 = unused slot

    @classmethod
    def of(cls, types: DeviceTypeTable) -> TypeTables:
        names, lens = fj.name_table([n.encode() for n in types.index])
        per_type = [[b""] * MAX_SIGNALS for _ in types.types]
        for t, index in enumerate(types.signal_index):
            for name, k in index.items():
                per_type[t][k] = name.encode()
        width = max(len(x) for row in per_type for x in row) or 1
        snames = np.zeros((len(per_type), MAX_SIGNALS, width), dtype=np.uint8)
        slens = np.zeros((len(per_type), MAX_SIGNALS), dtype=np.int64)
        for t, row in enumerate(per_type):
            table, row_lens = fj.name_table(row)
            snames[t, :, :table.shape[1]] = table
            slens[t] = row_lens
        return cls(names, lens, snames, slens)


_TABLES: dict[int, tuple[DeviceTypeTable, TypeTables]] = {}


def _tables(types: DeviceTypeTable) -> TypeTables:
    hit = _TABLES.get(id(types))
    if hit is None or hit[0] is not types:  # the table object is held, so its id stays unique
        hit = _TABLES[id(types)] = (types, TypeTables.of(types))
    return hit[1]


def _join(parts: list[bytes | None]) -> tuple[bytes, I64, I64]:
    """One buffer and [start, end) per part; start -1 for None."""
    try:
        buf = b"".join(parts)  # type: ignore[arg-type]  # None raises, handled below
        lens = np.fromiter(map(len, parts), np.int64, len(parts))  # type: ignore[arg-type]
        missing = None
    except TypeError:
        missing = np.array([p is None for p in parts], dtype=np.bool_)
        filled = [p or b"" for p in parts]
        buf = b"".join(filled)
        lens = np.fromiter(map(len, filled), np.int64, len(parts))
    ends = np.cumsum(lens)
    starts = ends - lens
    if missing is not None:
        starts[missing] = -1
    return buf, starts, ends


@dataclass
class Parsed:
    """The parser's output for one raw batch (row i = message i)."""

    buf: bytes
    arr: U8
    starts: I64
    ends: I64
    status: npt.NDArray[np.int8]
    ints: I64
    floats: npt.NDArray[np.float64]
    signals: npt.NDArray[np.float64]
    spans: I64

    @classmethod
    def of(cls, raw: RawBatch, tables: TypeTables, cfg: DecodeConfig, now_ms: int) -> Parsed:
        n = len(raw)
        buf, starts, ends = _join(raw.values)
        kbuf, kstarts, kends = _join(raw.keys)
        arr = np.frombuffer(buf, dtype=np.uint8)
        p = cls(buf, arr, starts, ends, np.empty(n, dtype=np.int8),
                np.empty((n, fj.N_INTS), dtype=np.int64), np.empty((n, fj.N_FLOATS)),
                np.empty((n, MAX_SIGNALS)), np.empty((n, fj.N_SPAN_COLS), dtype=np.int64))
        fj.parse_batch(arr, starts, ends, np.frombuffer(kbuf, dtype=np.uint8), kstarts, kends,
                       tables.names, tables.name_lens, tables.signal_names, tables.signal_lens,
                       cfg.max_message_bytes, now_ms + cfg.max_future_skew_ms, p.status, p.ints,
                       p.floats, p.signals, p.spans)
        return p

    def span(self, col: int) -> tuple[I64, I64]:
        return np.ascontiguousarray(self.spans[:, col]), np.ascontiguousarray(self.spans[:, col + 1])

    def strings(self, col: int) -> tuple[I64, list[str]]:
        """(code per row, -1 = None; distinct values) of a string span column."""
        s, e = self.span(col)
        codes, reps = fj.intern_spans(self.arr, s, e)
        buf = self.buf
        return codes, [buf[a:b].decode() for a, b in zip(s[reps].tolist(), e[reps].tolist(),
                                                         strict=True)]


def _column(codes: I64, values: Sequence[str]) -> list[str | None]:
    """values[code] per row, None where the code is -1 (the extra last entry)."""
    table = np.empty(len(values) + 1, dtype=object)
    table[:len(values)] = values
    table[-1] = None
    out: list[str | None] = table[codes].tolist()
    return out


def _signatures(p: Parsed, dev_codes: I64, devices: list[str], keys: KeyRing) -> I64:
    """sig_state per row. Signed messages whose bytes minus the sig member do not verify (tampered,
    or signed canonically by a producer that sends another layout) are set to FALLBACK: the
    reference then re-checks the canonical encoding, as it does for every message."""
    s, e = p.span(fj.SP_SIG)
    signed = (p.status == fj.OK) & (e > s)  # "" and null count as unsigned, as in the reference
    state = np.where(signed, SIG_BAD, SIG_MISSING).astype(np.int64)
    cut_a, cut_b = p.span(fj.SP_CUT)
    fast = signed & (cut_a >= 0)
    p.status[signed & ~fast] = fj.FALLBACK
    idx = np.flatnonzero(fast)
    if not len(idx):
        return state
    pads = [keys.pads(d) for d in devices]
    mv = memoryview(p.buf)
    digests: list[bytes] = []
    add = digests.append
    for c, a, b, x, y in zip(dev_codes[idx].tolist(), p.starts[idx].tolist(), cut_a[idx].tolist(),
                             cut_b[idx].tolist(), p.ends[idx].tolist(), strict=True):
        inner, outer = pads[c]
        h = inner.copy()
        h.update(mv[a:b])
        h.update(mv[x:y])
        o = outer.copy()
        o.update(h.digest())
        add(o.digest())
    mat = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(idx), 32)
    good = fj.hex_equals(p.arr, s[idx], e[idx], mat)
    state[idx[good]] = SIG_OK
    p.status[idx[~good]] = fj.FALLBACK
    return state


def _fast_rows(p: Parsed, rows: I64 | None, raw: RawBatch, types: DeviceTypeTable, keys: KeyRing,
               cfg: DecodeConfig) -> tuple[TelemetryBatch, I64]:
    """The batch of parsed rows (all when `rows` is None) and the final row selection."""
    dev_codes, devices = p.strings(fj.SP_DEV)
    sig_state = _signatures(p, dev_codes, devices, keys)
    if rows is None and not (p.status == fj.OK).all():
        rows = np.flatnonzero(p.status == fj.OK)
    elif rows is not None:
        rows = rows[p.status[rows] == fj.OK]
    sel = slice(None) if rows is None else rows
    dc = dev_codes[sel]
    crc = np.array([zlib.crc32(d.encode()) for d in devices], dtype=np.int64)
    src_codes, srcs = p.strings(fj.SP_SRC)
    src_hash = np.array([zlib.crc32(x.encode()) + 1 if x else 0 for x in srcs] + [0],
                        dtype=np.int64)
    fw_codes, fws = p.strings(fj.SP_FW)
    unknown = np.zeros((len(fws) + 1, len(types)), dtype=np.int64)
    for u, fw in enumerate(fws):
        unknown[u] = [fw not in known for known in types.firmware]
    dst_codes, dsts = p.strings(fj.SP_DST)
    pr_codes, prs = p.strings(fj.SP_PRINC)
    type_idx = p.ints[sel, fj.C_TYPE]
    fc = fw_codes[sel]
    n = len(dc)
    batch = TelemetryBatch(
        device_ids=cast(list[str], _column(dc, devices)),  # parsed rows all have one
        src_ips=_column(src_codes[sel], srcs),
        dst_ips=_column(dst_codes[sel], dsts),
        principals=_column(pr_codes[sel], prs),
        fws=_column(fc, fws),
        shard=crc[dc] % cfg.shards,
        type_idx=np.ascontiguousarray(type_idx),
        ts=np.ascontiguousarray(p.ints[sel, fj.C_TS]),
        seq=np.ascontiguousarray(p.ints[sel, fj.C_SEQ]),
        signals=np.ascontiguousarray(p.signals[sel]),
        bytes_in=np.ascontiguousarray(p.floats[sel, fj.V_BIN]),
        bytes_out=np.ascontiguousarray(p.floats[sel, fj.V_BOUT]),
        conns=np.ascontiguousarray(p.floats[sel, fj.V_CONN]),
        auth_fail=np.ascontiguousarray(p.floats[sel, fj.V_FAIL]),
        auth_ok=np.ascontiguousarray(p.floats[sel, fj.V_SUCC]),
        dst_port=np.ascontiguousarray(p.ints[sel, fj.C_PORT]),
        src_hash=src_hash[src_codes[sel]],
        sig_state=np.ascontiguousarray(sig_state[sel]),
        fw_unknown=unknown[fc, type_idx],
        partition=np.full(n, raw.partition, dtype=np.int64),
        offset=np.ascontiguousarray(np.asarray(raw.offsets, dtype=np.int64)[sel]),
    )
    return batch, (np.arange(len(raw), dtype=np.int64) if rows is None else rows)


def decode_batch(raw: RawBatch, types: DeviceTypeTable, keys: KeyRing, cfg: DecodeConfig,
                 now_ms: int | None = None) -> DecodeOut:
    """`decode.decode_batch`'s result (columns of the valid messages, dead letters for the rest),
    with the common message shape parsed in bulk."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if len(raw) == 0:
        return reference_decode(raw, types, keys, cfg, now_ms)
    p = Parsed.of(raw, _tables(types), cfg, now_ms)
    first_ok = np.flatnonzero(p.status == fj.OK)
    rows = None if len(first_ok) == len(raw) else first_ok
    if rows is not None:
        p.spans[p.status != fj.OK] = -1  # only parsed rows intern strings
    fast, rows_kept = _fast_rows(p, rows, raw, types, keys, cfg)
    slow = np.flatnonzero(p.status != fj.OK)
    if not len(slow):
        return DecodeOut(fast, [], [False] * len(raw))
    sub = RawBatch(raw.topic, raw.partition, np.asarray(raw.offsets)[slow],
                   [raw.keys[i] for i in slow.tolist()], [raw.values[i] for i in slow.tolist()])
    ref = reference_decode(sub, types, keys, cfg, now_ms)
    rejected = np.zeros(len(raw), dtype=np.bool_)
    rejected[slow[np.array(ref.rejected, dtype=np.bool_)]] = True
    accepted = slow[~rejected[slow]]
    order = np.argsort(np.concatenate([rows_kept, accepted]), kind="stable")
    merged = TelemetryBatch.concat([fast, ref.oks]).take(order)
    return DecodeOut(merged, ref.errs, rejected.tolist(), ref.last_reason)
