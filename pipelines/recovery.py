"""Bytewax recovery stores: creating them, and resuming ones written before the `twinguard` package.

Snapshots are pickles, and a pickle names the module of every class in it. Up to 0.1 the modules were
top-level (`operators.twin_store`); now they are `twinguard.operators.twin.store`. A store written by
0.1 is resumed by aliasing those old names to the new modules while it is read — only when the store
holds them, so nothing else ever sees a top-level `operators` module. New snapshots use the new names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import re
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import ModuleType

from bytewax.recovery import RecoveryConfig, init_db_dir

from twinguard.pipelines.config import Config

log = logging.getLogger(__name__)
CREATING = ".creating"  # partitions of a store being created, moved into the store when complete
STORE_WAIT_S = 120.0  # how long processes 1..N-1 wait for process 0 to create the store

# every module of 0.1 whose classes can be in a snapshot (state lives in operators; contracts in schemas)
LEGACY_MODULES = {
    "operators": "twinguard.operators",
    "operators.activity": "twinguard.operators.decode.activity",
    "operators.anomaly": "twinguard.operators.detect.anomaly",
    "operators.batches": "twinguard.operators.batches",
    "operators.brake": "twinguard.operators.decode.brake",
    "operators.decode": "twinguard.operators.decode.telemetry",
    "operators.desired": "twinguard.operators.twin.desired",
    "operators.detectors": "twinguard.operators.detect.detectors",
    "operators.engine": "twinguard.operators.twin.engine",
    "operators.fastdecode": "twinguard.operators.decode.fast",
    "operators.hashing": "twinguard.operators.decode.hashing",
    "operators.insider": "twinguard.operators.users.insider",
    "operators.integrity": "twinguard.operators.integrity.signatures",
    "operators.intel": "twinguard.operators.intel.table",
    "operators.kafka_io": "twinguard.operators.io.kafka",
    "operators.local_io": "twinguard.operators.io.local",
    "operators.policy": "twinguard.operators.detect.policy",
    "operators.risk": "twinguard.operators.twin.risk",
    "operators.rule_threats": "twinguard.operators.detect.rule_threats",
    "operators.scoring": "twinguard.operators.detect.scoring",
    "operators.settings": "twinguard.operators.settings",
    "operators.twin_operator": "twinguard.operators.twin.logic",
    "operators.twin_store": "twinguard.operators.twin.store",
    "schemas": "twinguard.schemas",
    "schemas.device_types": "twinguard.schemas.device_types",
    "schemas.features": "twinguard.schemas.features",
    "schemas.messages": "twinguard.schemas.messages",
}
# a pickled module name: not preceded by a word character or a dot (so never a twinguard.* name)
_LEGACY_NAME = re.compile(rb"(?<![\w.])(?:operators|schemas)(?:\.[a-z_]+)?(?![\w.])")


class RecoveryStoreError(RuntimeError):
    """A recovery store cannot be used; the message says what to do."""


def recovery_config(cfg: Config, process_id: int | None = None) -> RecoveryConfig | None:
    """Bytewax recovery for cfg.recovery.dir: created on first start; a 0.1 store is made readable.

    In a cluster every process shares the store: process 0 creates it, the others wait for it.
    """
    rc = cfg.recovery
    if not rc.dir:
        return None
    store = Path(rc.dir)
    if not _complete(store):
        if process_id in (None, 0):
            create_store(store, rc.partitions)
        else:
            _wait_for_store(store, process_id, STORE_WAIT_S)
    else:
        found = legacy_names(store)
        if found:
            alias_legacy_modules()
            log.warning("recovery store %s was written by twinguard 0.1 (%s): resuming it with its "
                        "module names aliased; new snapshots use the twinguard.* names", store,
                        ", ".join(sorted(found)[:3]))
    return RecoveryConfig(store, timedelta(seconds=rc.backup_interval_s))


def create_store(store: Path, partitions: int) -> None:
    """The partitions are made aside and moved in, so no process ever sees half a store."""
    store.mkdir(parents=True, exist_ok=True)
    aside = store / CREATING
    if aside.exists():
        for old in aside.glob("*"):  # a creation cut short: start it again
            old.unlink()
    aside.mkdir(exist_ok=True)
    init_db_dir(aside, partitions)
    for part in sorted(aside.glob("part-*.sqlite3")):
        part.rename(store / part.name)
    aside.rmdir()
    log.info("created recovery store %s with %d partition(s)", store, partitions)


def _complete(store: Path) -> bool:
    return any(store.glob("part-*.sqlite3")) and not (store / CREATING).exists()


def _wait_for_store(store: Path, process_id: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    log.info("process %d: waiting for process 0 to create the recovery store %s", process_id, store)
    while not _complete(store):
        if time.monotonic() > deadline:
            raise RecoveryStoreError(
                f"recovery store {store} was not created by process 0 within {timeout_s:.0f} s: "
                "every process must mount the same store (a shared volume), and process 0 must run")
        time.sleep(0.2)


def legacy_names(store: Path) -> set[str]:
    """The 0.1 module names pickled in a store's snapshots (empty for a store of this version)."""
    found: set[str] = set()
    for part in sorted(store.glob("part-*.sqlite3")):
        try:
            with sqlite3.connect(f"file:{part}?mode=ro", uri=True) as db:
                for (blob,) in db.execute("SELECT ser_change FROM snaps WHERE ser_change IS NOT NULL"):
                    found.update(m.decode() for m in _LEGACY_NAME.findall(blob))
        except sqlite3.Error as e:
            raise RecoveryStoreError(f"recovery store {part} cannot be read ({e}): point "
                                     "--recovery-dir at a Bytewax recovery store or an empty folder") from e
    unknown = found - LEGACY_MODULES.keys()
    if unknown:
        raise RecoveryStoreError(
            f"recovery store {store} holds snapshots of modules this version cannot map "
            f"({', '.join(sorted(unknown))}): resume it with the version that wrote it, or start "
            "with an empty --recovery-dir (input is re-read; outputs keep their ids)")
    return found


class _AliasLoader(importlib.abc.Loader):
    """Loads a legacy module name as the module that replaced it (the same module object)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module is already imported."""


class _LegacyFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        new = LEGACY_MODULES.get(name)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(name, _AliasLoader(new))


def alias_legacy_modules() -> None:
    """Let pickles that name 0.1 modules load (idempotent; appended, so real modules win)."""
    if not any(isinstance(f, _LegacyFinder) for f in sys.meta_path):
        sys.meta_path.append(_LegacyFinder())
