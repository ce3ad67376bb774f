"""The Bytewax shim around a shard engine: how often it asks to be woken, what it snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.engines import rules_engine
from tests.support.meters import MeterEvent, meter_batch
from twinguard.operators.settings import PipelineConfig
from twinguard.operators.twin.logic import ShardLogic

T0 = 1_700_000_000_000


def _logic(snapshots: bool, tick_ms: int = 250) -> ShardLogic:
    ctx = rules_engine(PipelineConfig(idle_tick_ms=tick_ms)).ctx
    logic = ShardLogic(ctx, None, snapshots=snapshots)
    logic.on_batch([meter_batch([MeterEvent("m1", T0, 0, 230.0, 100.0, 0.0, 443, 0)])])
    return logic


def test_idle_shards_are_woken_at_the_configured_tick() -> None:
    for tick_ms in (250, 1000):
        before = datetime.now(UTC)
        at = _logic(True, tick_ms).notify_at()
        assert before + timedelta(milliseconds=tick_ms) <= at
        assert at <= datetime.now(UTC) + timedelta(milliseconds=tick_ms)


def test_a_snapshot_is_an_independent_copy_unless_recovery_is_known_to_be_off() -> None:
    on = _logic(True)
    snap = on.snapshot()
    assert snap is not on.engine.store and snap.size == on.engine.store.size == 1
    on.on_batch([meter_batch([MeterEvent("m2", T0 + 1, 0, 230.0, 100.0, 0.0, 443, 0)])])
    assert snap.size == 1 and on.engine.store.size == 2  # the copy did not move on

    off = _logic(False)
    assert off.snapshot() is off.engine.store  # nothing copied: Bytewax drops it unread
