"""What the archive stores per kind: a typed row per message, its date partition, its Parquet schema.

Rows are decoded with the topics' own Structs (schemas/messages.py); fields a newer producer adds
are ignored (msgspec's default), so feedback extended with scope/device fields still archives. A
message that does not decode is an `ArchiveRejectError` whose text is the dead letter's reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import polars as pl

from twinguard.schemas.features import FEATURE_NAMES
from twinguard.schemas.messages import Feedback, ThreatEvent, WindowRecord

KINDS = ("windows", "threats", "feedback")
FEATURE_PREFIX = "f_"  # feature columns: f_<name> (schemas/features.py)
PROVENANCE = {"_partition": pl.Int32, "_offset": pl.Int64}

SCHEMAS: dict[str, dict[str, Any]] = {
    "windows": {"device_id": pl.String, "device_type": pl.String, "fw": pl.String,
                "risk": pl.Float64, "window_start": pl.Int64, "window_end": pl.Int64,
                "model_class": pl.String, "model_probability": pl.Float64, "decided": pl.String,
                "model_version": pl.String, "feature_schema": pl.String,
                **{FEATURE_PREFIX + n: pl.Float64 for n in FEATURE_NAMES}, **PROVENANCE},
    "threats": {"id": pl.String, "device_id": pl.String, "device_type": pl.String,
                "threat": pl.String, "severity": pl.String, "score": pl.Float64,
                "model_version": pl.String, "window_start": pl.Int64, "window_end": pl.Int64,
                "detected_at": pl.Int64, **PROVENANCE},
    "feedback": {"threat_id": pl.String, "verdict": pl.String, "analyst": pl.String,
                 "ts": pl.Int64, "threat": pl.String, "note": pl.String, **PROVENANCE},
}
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "windows": msgspec.json.Decoder(WindowRecord),
    "threats": msgspec.json.Decoder(ThreatEvent),
    "feedback": msgspec.json.Decoder(Feedback)}


class ArchiveRejectError(ValueError):
    """A record the archive cannot store; str(error) is the dead-letter reason."""


def to_row(kind: str, value: bytes | None) -> tuple[str, dict[str, Any]]:
    """(date partition YYYY-MM-DD, row) of one message of `kind`. Raises ArchiveRejectError."""
    if not value:
        raise ArchiveRejectError(f"empty {kind} message")
    try:
        msg = _decoders[kind].decode(value)
    except msgspec.ValidationError as e:
        raise ArchiveRejectError(f"{kind} schema: {e}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise ArchiveRejectError(f"{kind}: malformed JSON: {e}") from None
    if isinstance(msg, WindowRecord):
        return _date(msg.window_end), _window_row(msg)
    if isinstance(msg, ThreatEvent):
        row = {k: getattr(msg, k) for k in SCHEMAS["threats"] if k not in PROVENANCE}
        return _date(msg.window_end), row
    row = {k: getattr(msg, k) for k in SCHEMAS["feedback"] if k not in PROVENANCE}
    return _date(msg.ts), row


def _window_row(msg: WindowRecord) -> dict[str, Any]:
    unknown = set(msg.features) - set(FEATURE_NAMES)
    if unknown:
        raise ArchiveRejectError(f"windows: features {sorted(unknown)[:3]} are not in this "
                                 f"version's feature schema (schemas/features.py)")
    row: dict[str, Any] = {k: getattr(msg, k) for k in SCHEMAS["windows"]
                           if k not in PROVENANCE and not k.startswith(FEATURE_PREFIX)}
    row.update({FEATURE_PREFIX + n: msg.features.get(n) for n in FEATURE_NAMES})
    return row


def _date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def frame(kind: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows as a DataFrame with the kind's fixed schema (every file of a kind reads alike)."""
    return pl.DataFrame(rows, schema=SCHEMAS[kind], orient="row")
