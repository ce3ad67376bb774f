"""One recovery store for a whole cluster: process 0 creates it whole, the others wait for it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from twinguard.pipelines import recovery
from twinguard.pipelines.config import Config


def test_process_zero_creates_the_store(config: Config, tmp_path: Path) -> None:
    cfg = config.replace(recovery={"dir": str(tmp_path / "store"), "partitions": 3})
    assert recovery.recovery_config(cfg, process_id=0) is not None
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "part-0.sqlite3", "part-1.sqlite3", "part-2.sqlite3"]


def test_other_processes_wait_for_the_whole_store(config: Config, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cfg = config.replace(recovery={"dir": str(store), "partitions": 2})
    (store / recovery.CREATING).mkdir(parents=True)  # process 0 is half-way through creating it
    (store / "part-0.sqlite3").touch()
    waiter_done = threading.Event()

    def process_one() -> None:
        recovery.recovery_config(cfg, process_id=1)
        waiter_done.set()

    t = threading.Thread(target=process_one, daemon=True)
    t.start()
    assert not waiter_done.wait(1.0)  # a half-made store is not used
    recovery.create_store(store, 2)  # process 0 starts over and completes it
    t.join(30)
    assert waiter_done.is_set()
    assert not (store / recovery.CREATING).exists()


def test_a_store_that_never_appears_is_refused_with_what_to_check(
        config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "STORE_WAIT_S", 0.5)
    cfg = config.replace(recovery={"dir": str(tmp_path / "never")})
    with pytest.raises(recovery.RecoveryStoreError, match="every process must mount the same store"):
        recovery.recovery_config(cfg, process_id=2)
