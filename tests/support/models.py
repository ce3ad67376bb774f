"""Model directories for registry tests: real copies of the shipped model under a new version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from twinguard.operators.detect.scoring import META_FILE, default_model_dir


def model_version_dir(dst: Path, version: str, **meta_changes: object) -> Path:
    """The shipped model directory copied to `dst` with metadata `version` (and any other
    metadata keys) changed: the same booster, verifiable, under another version."""
    shutil.copytree(default_model_dir(), dst)
    meta = json.loads((dst / META_FILE).read_text())
    meta.update(version=version, **meta_changes)
    (dst / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return dst
