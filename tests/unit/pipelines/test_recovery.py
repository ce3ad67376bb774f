"""Recovery stores written before the twinguard package (0.1: top-level `operators.*` modules) resume."""

from __future__ import annotations

import pickle
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bytewax.recovery import init_db_dir

from twinguard.operators.twin.store import TwinStore
from twinguard.pipelines import recovery
from twinguard.pipelines.config import load_config


@pytest.fixture
def no_aliases() -> Iterator[None]:
    """Each test starts and ends without the legacy finder or legacy modules in sys.modules."""
    def clean() -> None:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, recovery._LegacyFinder)]
        for name in recovery.LEGACY_MODULES:
            sys.modules.pop(name, None)
    clean()
    yield
    clean()


def as_legacy(store: TwinStore) -> bytes:
    """The pickle 0.1 wrote: protocol 4 (Bytewax's), the class under its old module name."""
    cls, module = TwinStore, sys.modules[TwinStore.__module__]
    real_name = cls.__module__
    cls.__module__ = "operators.twin_store"
    sys.modules["operators.twin_store"] = module
    try:
        return pickle.dumps(store, protocol=4)
    finally:
        cls.__module__ = real_name
        del sys.modules["operators.twin_store"]


def store_with(tmp_path: Path, blob: bytes) -> Path:
    init_db_dir(tmp_path, 1)
    with sqlite3.connect(tmp_path / "part-0.sqlite3") as db:
        db.execute("INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
                   ("twinguard.shard", "0", 1, blob))
    return tmp_path


def a_store() -> TwinStore:
    store = TwinStore(n_types=2, ring_len=6)
    store.slots_for(["dev-1", "dev-2"], np.array([0, 1]))
    return store


def test_a_store_of_this_version_needs_no_alias(tmp_path: Path, no_aliases: None) -> None:
    path = store_with(tmp_path, pickle.dumps(a_store().snapshot()))
    assert recovery.legacy_names(path) == set()
    cfg = load_config(env={}).replace(recovery={"dir": str(path)})
    assert recovery.recovery_config(cfg) is not None
    assert "operators" not in sys.modules


def test_a_0_1_store_resumes_with_its_state(tmp_path: Path, no_aliases: None) -> None:
    legacy = as_legacy(a_store().snapshot())
    assert b"operators.twin_store" in legacy and b"twinguard" not in legacy
    path = store_with(tmp_path, legacy)
    assert "operators.twin_store" in recovery.legacy_names(path)
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(legacy)  # what Bytewax would hit without the aliases
    recovery.recovery_config(load_config(env={}).replace(recovery={"dir": str(path)}))
    restored = pickle.loads(legacy)
    assert isinstance(restored, TwinStore) and restored.device_ids == ["dev-1", "dev-2"]


def test_a_store_naming_unknown_modules_is_refused_with_what_to_do(tmp_path: Path,
                                                                    no_aliases: None) -> None:
    blob = as_legacy(a_store().snapshot()).replace(b"operators.twin_store", b"operators.gone_store")
    with pytest.raises(recovery.RecoveryStoreError, match="empty --recovery-dir"):
        recovery.legacy_names(store_with(tmp_path, blob))
