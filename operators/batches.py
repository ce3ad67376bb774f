"""The units that flow through the dataflow: raw message batches, columnar telemetry batches, outputs.

One Bytewax item = one batch of many events (ARCHITECTURE.md §2: batch, not event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from twinguard.schemas.device_types import MAX_SIGNALS

I64 = npt.NDArray[np.int64]
N_INTS = 12  # ColumnBuilder.ints columns: shard .. offset, dst_hash, princ_hash
F64 = npt.NDArray[np.float64]


@dataclass
class RawBatch:
    """Messages from one source partition, in partition order."""

    topic: str
    partition: int
    offsets: I64
    keys: list[bytes | None]
    values: list[bytes | None]

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class TelemetryBatch:
    """Decoded, validated telemetry as columns; row i is one accepted message."""

    device_ids: list[str]
    src_ips: list[str | None]
    dst_ips: list[str | None]
    principals: list[str | None]  # auth.principal
    fws: list[str | None]
    shard: I64
    type_idx: I64
    ts: I64
    seq: I64
    signals: F64  # [n, MAX_SIGNALS], NaN = not reported
    bytes_in: F64
    bytes_out: F64
    conns: F64
    auth_fail: F64
    auth_ok: F64  # auth.successes
    dst_port: I64  # -1 = none
    src_hash: I64  # 0 = none
    dst_hash: I64  # hashing.string_hash of dst_ips, 0 = none
    princ_hash: I64  # of principals
    sig_state: I64  # integrity.SIG_OK / SIG_MISSING / SIG_BAD
    fw_unknown: I64
    partition: I64
    offset: I64
    # the original message bytes, for rejects after decoding (dead letters carry them); empty when
    # the rows did not come from messages (tables, tests)
    raw: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.device_ids)

    def take(self, idx: I64) -> TelemetryBatch:
        """Rows `idx` as a new batch (lists by itemgetter, arrays by fancy indexing)."""
        rows = idx.tolist()  # plain ints: indexing a list with numpy ints is ~3x slower
        pick = itemgetter(*rows) if len(rows) > 1 else None
        kw: dict[str, object] = {}
        n = len(self)
        for name, value in self.__dict__.items():
            if isinstance(value, list) and len(value) != n:
                kw[name] = []  # an optional column this batch does not have
            elif isinstance(value, list):
                kw[name] = list(pick(value)) if pick is not None else [value[i] for i in rows]
            else:
                kw[name] = value[idx]
        return TelemetryBatch(**kw)  # type: ignore[arg-type]

    def split_by_shard(self) -> list[tuple[int, TelemetryBatch]]:
        """(shard, rows of that shard in arrival order) for every shard present."""
        if len(self) == 0:
            return []
        if (self.shard == self.shard[0]).all():
            return [(int(self.shard[0]), self)]
        order = np.argsort(self.shard, kind="stable")
        shards, starts = np.unique(self.shard[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        return [(int(s), self.take(order[bounds[j]:bounds[j + 1]])) for j, s in enumerate(shards)]

    @staticmethod
    def concat(parts: list[TelemetryBatch]) -> TelemetryBatch:
        if len(parts) == 1:
            return parts[0]
        kw: dict[str, object] = {}
        for name, value in parts[0].__dict__.items():
            if isinstance(value, list) and any(len(p.__dict__[name]) != len(p) for p in parts):
                kw[name] = []  # an optional column some part does not have
            elif isinstance(value, list):
                kw[name] = [x for p in parts for x in p.__dict__[name]]
            else:
                kw[name] = np.concatenate([p.__dict__[name] for p in parts])
        return TelemetryBatch(**kw)  # type: ignore[arg-type]


@dataclass
class ColumnBuilder:
    """Accumulates accepted rows during decoding, then freezes them into a TelemetryBatch."""

    device_ids: list[str] = field(default_factory=list)
    src_ips: list[str | None] = field(default_factory=list)
    dst_ips: list[str | None] = field(default_factory=list)
    principals: list[str | None] = field(default_factory=list)
    fws: list[str | None] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    ints: list[tuple[int, ...]] = field(default_factory=list)  # N_INTS columns, build() order
    floats: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    signals: list[list[float]] = field(default_factory=list)

    def build(self) -> TelemetryBatch:
        n = len(self.device_ids)
        ints = np.array(self.ints, dtype=np.int64).reshape(n, N_INTS)
        floats = np.array(self.floats, dtype=np.float64).reshape(n, 5)
        sig = np.array(self.signals, dtype=np.float64).reshape(n, MAX_SIGNALS)
        cols = [np.ascontiguousarray(ints[:, j]) for j in range(N_INTS)]
        fcols = [np.ascontiguousarray(floats[:, j]) for j in range(5)]
        return TelemetryBatch(
            device_ids=self.device_ids, src_ips=self.src_ips, dst_ips=self.dst_ips,
            principals=self.principals, fws=self.fws,
            shard=cols[0], type_idx=cols[1], ts=cols[2], seq=cols[3], dst_port=cols[4],
            src_hash=cols[5], sig_state=cols[6], fw_unknown=cols[7], partition=cols[8],
            offset=cols[9], dst_hash=cols[10], princ_hash=cols[11], signals=sig,
            bytes_in=fcols[0], bytes_out=fcols[1], conns=fcols[2],
            auth_fail=fcols[3], auth_ok=fcols[4], raw=self.raw,
        )


class OutMsg(NamedTuple):
    """One output message for the topic playing `role` (twins, threats, actions, deadletter)."""

    role: str
    key: bytes
    value: bytes
