"""Learned per-device baselines of a replayed table, saved in a verified model directory.

`twinguard train TABLE...` stores them in `baselines.npz` (numpy arrays only, loaded with
allow_pickle=False; the multivariate model's arrays too) next to `metadata.json`, which records
the table layout (signal columns, window length, device ids) and the sha256 of every file;
`replay --model DIR` starts from them, so a device whose normal behaviour was learned is judged
from its first row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.scoring import (
    META_FILE,
    MODEL_FILE,
    ModelError,
    Scorer,
    sha256_file,
    verify_files,
)
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import multivariate_arrays
from twinguard.operators.twin.store import TwinStore
from twinguard.pipelines.tables.read import Table

BASELINES_FILE = "baselines.npz"
MV_KEYS = tuple(multivariate_arrays(0, 1))  # the multivariate model's arrays, saved per device
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LearnedBaselines:
    """Own baselines per device and the table type's peer baseline, after a replay."""

    window_ms: int
    rows_per_window: float  # the table's nominal rate (ReplayPlan.rows_per_window)
    signals: tuple[str, ...]
    device_ids: tuple[str, ...]
    base: F64  # [devices, kernels.B_SIG0 + signals, 2] EWMA mean, variance
    base_n: I64  # [devices] clean windows learned
    peer: F64  # [kernels.B_SIG0 + signals, 2]
    peer_n: int
    # the multivariate model's per-device arrays (layout.multivariate_arrays), empty = none learned
    mv: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def has_deltas(self) -> bool:
        """Learned with replay's derived row-to-row change signals (so replay adds them too)."""
        return any(n.endswith(".delta") for n in self.signals)

    @classmethod
    def from_store(cls, store: TwinStore, signals: tuple[str, ...], window_ms: int,
                   rows_per_window: float) -> LearnedBaselines:
        n, q = store.size, K.B_SIG0 + len(signals)
        a = store.arrays
        return cls(window_ms, rows_per_window, signals, tuple(store.device_ids),
                   a["base"][:n, :q].copy(), a["istate"][:n, K.I_BASE_N].copy(),
                   store.peer[0, :q].copy(), int(store.peer_n[0]),
                   {k: a[k][:n].copy() for k in MV_KEYS})

    def apply(self, store: TwinStore, table: Table, strict: bool = True) -> set[str]:
        """Seed a fresh store with these baselines; returns the table's devices that had some
        (strict: none is an error, the device names probably differ)."""
        if tuple(table.signal_names) != self.signals:
            raise ModelError(f"the model learned signals {list(self.signals)} but {table.source} "
                             f"has {list(table.signal_names)}; pass the same --signals")
        known = set(self.device_ids) & set(table.devices)
        if strict and not known:
            raise ModelError(f"none of the devices in {table.source} ({_few(set(table.devices))}) "
                             f"has learned baselines (model: {_few(set(self.device_ids))}); "
                             "name devices the same way (--device / --device-col)")
        slots = store.slots_for(list(self.device_ids), np.zeros(len(self.device_ids), dtype=np.int64))
        q = self.base.shape[1]
        store.arrays["base"][slots, :q] = self.base
        store.arrays["istate"][slots, K.I_BASE_N] = self.base_n
        store.peer[0, :q] = self.peer
        store.peer_n[0] = self.peer_n
        for k, v in self.mv.items():
            store.arrays[k][slots] = v
        return known

    def save(self, directory: Path) -> dict[str, Any]:
        """Write baselines.npz; returns the metadata entry describing them."""
        arrays = {"base": self.base, "base_n": self.base_n, "peer": self.peer,
                  "peer_n": np.array([self.peer_n], dtype=np.int64), **self.mv}
        np.savez(directory / BASELINES_FILE, allow_pickle=False, **arrays)
        return {"window_ms": self.window_ms, "rows_per_window": self.rows_per_window,
                "signals": list(self.signals),
                "device_ids": list(self.device_ids)}

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> LearnedBaselines:
        info = meta["baselines"]
        with np.load(directory / BASELINES_FILE, allow_pickle=False) as z:
            base, base_n, peer, peer_n = z["base"], z["base_n"], z["peer"], z["peer_n"]
            mv = {k: z[k] for k in MV_KEYS if k in z.files}  # older models have none: it learns
        n, q = len(info["device_ids"]), K.B_SIG0 + len(info["signals"])
        if base.shape != (n, q, 2) or base_n.shape != (n,) or peer.shape != (q, 2):
            raise ModelError(f"{directory}/{BASELINES_FILE}: arrays do not match the metadata")
        expect = multivariate_arrays(0, 1)
        for k, v in mv.items():
            if v.shape[0] != n or v.dtype != expect[k].dtype:
                raise ModelError(f"{directory}/{BASELINES_FILE}: {k} does not match the metadata")
            if k in ("mv_i", "mv_cal") and v.shape[1:] != expect[k].shape[1:]:
                raise ModelError(f"{directory}/{BASELINES_FILE}: its multivariate model was made by "
                                 "an older twinguard; run `twinguard train` again")
        return cls(int(info["window_ms"]), float(info["rows_per_window"]), tuple(info["signals"]),
                   tuple(info["device_ids"]),
                   base.astype(np.float64), base_n.astype(np.int64), peer.astype(np.float64),
                   int(peer_n[0]), mv)


@dataclass(frozen=True)
class TableModel:
    """What `replay --model DIR` starts from: learned baselines and/or a classifier."""

    baselines: LearnedBaselines | None
    scorer: Scorer | None
    multivariate: dict[str, Any] = field(default_factory=dict)  # how train ran it (limits, context)


def load_table_model(directory: str | Path) -> TableModel:
    """Verify (sha256 of every file) and load a model directory written by `train TABLE...`."""
    d = Path(directory)
    meta_path = d / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"{d} is not a model directory (no {META_FILE}); build one with "
                         "`twinguard train TABLE --out DIR`")
    meta = json.loads(meta_path.read_text())
    verify_files(meta, d)
    baselines = LearnedBaselines.load(d, meta) if "baselines" in meta else None
    scorer = Scorer.load(d) if (d / MODEL_FILE).is_file() else None
    if baselines is None and scorer is None:
        raise ModelError(f"{d}: neither {BASELINES_FILE} nor {MODEL_FILE}")
    return TableModel(baselines, scorer, dict(meta.get("data", {}).get("multivariate", {})))


def file_digests(directory: Path, names: list[str]) -> dict[str, str]:
    return {n: sha256_file(directory / n) for n in names}


def _few(names: set[str], k: int = 3) -> str:
    s = sorted(names)
    return ", ".join(s[:k]) + (f" … ({len(s)} in all)" if len(s) > k else "")
