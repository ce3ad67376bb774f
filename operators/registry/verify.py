"""Load the model directory a registry record points at, refusing any mismatch with a reason."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from twinguard.operators.detect.scoring import ModelError, Scorer, sha256_file, verify_digests
from twinguard.schemas.features import FEATURE_SCHEMA
from twinguard.schemas.messages import ModelRecord


def model_path(location: str) -> Path:
    """A registry location as a local directory: a path or a file:// URI (other schemes refused)."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
        raise ModelError(f"model location {location!r}: only paths and file:// URIs are supported")
    return Path(location)


def directory_files(d: Path) -> dict[str, str]:
    """sha256 of every regular file directly in a model directory (what a record lists)."""
    return {p.name: sha256_file(p) for p in sorted(d.iterdir()) if p.is_file()}


def load_record(rec: ModelRecord) -> Scorer:
    """The record's model, verified: every listed file's sha256, the directory's own metadata
    (sha256, feature names, classes: Scorer.load), the version and the feature contract."""
    d = model_path(rec.location)
    if not d.is_dir():
        raise ModelError(f"model {rec.name} {rec.version}: {d} is not a readable directory")
    if not rec.files:
        raise ModelError(f"model {rec.name} {rec.version}: the record lists no files to verify")
    try:
        verify_digests(rec.files, d, "the registry record")
    except ModelError as e:
        raise ModelError(f"model {rec.name} {rec.version}: {e}") from None
    if rec.feature_schema and rec.feature_schema != FEATURE_SCHEMA:
        raise ModelError(f"model {rec.name} {rec.version}: feature schema {rec.feature_schema} is "
                         f"not this build's {FEATURE_SCHEMA}; retrain")
    scorer = Scorer.load(d)
    if scorer.version != rec.version:
        raise ModelError(f"model {rec.name}: the record says version {rec.version}, {d} holds "
                         f"{scorer.version}")
    return scorer
