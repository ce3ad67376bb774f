"""Closed windows as `WindowRecord`s for the archive topic (off by default, [archive] emit_windows).

Only final windows are emitted (early-fired rows are partial windows, and would double-count in
training); features are the same values the model scored, so a model retrained on the archive sees
exactly what serving computes (ARCHITECTURE.md §5)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.batches import OutMsg
from twinguard.operators.intel.table import IntelIndex
from twinguard.operators.settings import RiskConfig
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin import risk as R
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.device_types import DeviceTypeTable
from twinguard.schemas.features import FEATURE_NAMES, FEATURE_SCHEMA, THREAT_CLASSES
from twinguard.schemas.messages import WindowRecord

ROLE = "windows"
_enc = msgspec.json.Encoder()


def window_records(store: TwinStore, types: DeviceTypeTable, intel: IntelIndex, risk: RiskConfig,
                   model_version: str, features: npt.NDArray[np.float64],
                   meta: npt.NDArray[np.int64], decided: npt.NDArray[np.int64],
                   probs: npt.NDArray[np.float64]) -> list[OutMsg]:
    """One `windows` message per final window (rows of `meta`, kernels.N_META columns), keyed by
    device."""
    rows = np.flatnonzero(meta[:, 6] == 1)
    if rows.size == 0:
        return []
    slots = meta[rows, 0]
    risks = R.assess_many(store, slots, types.types, intel, risk)
    model_cls = probs[rows].argmax(axis=1)
    istate = store.arrays["istate"]
    out = []
    for j, r in enumerate(rows.tolist()):
        s = int(slots[j])
        rec = WindowRecord(
            device_id=store.device_ids[s],
            device_type=types.types[int(istate[s, K.I_TYPE])].name, fw=store.fws[s],
            risk=risks[j][0], window_start=int(meta[r, 1]), window_end=int(meta[r, 2]),
            features={n: (None if math.isnan(v) else v)
                      for n, v in zip(FEATURE_NAMES, features[r].tolist(), strict=True)},
            feature_schema=FEATURE_SCHEMA, model_class=THREAT_CLASSES[int(model_cls[j])],
            model_probability=round(float(probs[r, model_cls[j]]), 6),
            decided=THREAT_CLASSES[int(decided[r])], model_version=model_version)
        out.append(OutMsg(ROLE, rec.device_id.encode(), _enc.encode(rec)))
    return out
