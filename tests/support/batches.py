"""Hand-made decoded telemetry (TelemetryBatch) for kernel and engine tests that skip the decoder."""

from __future__ import annotations

from typing import Any

import numpy as np

from twinguard.operators.batches import F64, TelemetryBatch

TEXT = ("src_ips", "dst_ips", "principals", "fws")
INTEGER = ("shard", "dst_port", "src_hash", "dst_hash", "princ_hash", "sig_state", "fw_unknown",
           "partition", "offset")
FLOAT = ("bytes_in", "bytes_out", "conns", "auth_fail", "auth_ok")


def telemetry_batch(device_ids: list[str], type_idx: int, ts: list[int], seq: list[int],
                    signals: F64, **columns: Any) -> TelemetryBatch:
    """One row per device id; a column not given is empty (no addresses, zeros, one connection,
    offsets 0..n-1). A given column is one value per row, or one value for every row."""
    unknown = set(columns) - {*TEXT, *INTEGER, *FLOAT}
    if unknown:
        raise TypeError(f"telemetry_batch: no column {sorted(unknown)}; columns: {TEXT + INTEGER + FLOAT}")
    n = len(device_ids)
    kw: dict[str, Any] = {name: [None] * n for name in TEXT}
    kw |= {name: np.zeros(n, dtype=np.int64) for name in INTEGER}
    kw |= {name: np.zeros(n) for name in FLOAT}
    kw |= {"conns": np.ones(n), "offset": np.arange(n, dtype=np.int64)}
    for name, value in columns.items():
        if name in TEXT:
            kw[name] = list(value) if isinstance(value, list) else [value] * n
        else:
            dtype = np.int64 if name in INTEGER else np.float64
            many = isinstance(value, list | np.ndarray)
            kw[name] = np.asarray(value, dtype=dtype) if many else np.full(n, value, dtype=dtype)
    return TelemetryBatch(device_ids=list(device_ids), type_idx=np.full(n, type_idx, dtype=np.int64),
                          ts=np.array(ts, dtype=np.int64), seq=np.array(seq, dtype=np.int64),
                          signals=signals, **kw)
