"""The Bytewax shim around ShardEngine: one stateful_batch logic per state shard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bytewax.operators import StatefulBatchLogic

from operators.batches import OutMsg, TelemetryBatch
from operators.engine import EngineContext, ShardEngine
from operators.twin_store import TwinStore

TICK = timedelta(seconds=1)


class ShardLogic(StatefulBatchLogic[TelemetryBatch, OutMsg, TwinStore]):
    """Feeds a shard's batches to its engine; ticks close idle windows and emit twins."""

    def __init__(self, ctx: EngineContext, resume: TwinStore | None) -> None:
        if resume is None:
            self.engine = ShardEngine.fresh(ctx)
        else:  # idle time is measured from now: downtime must not push the watermark forward
            resume.part_wall[:] = ctx.now()
            self.engine = ShardEngine(ctx, resume.upgrade())

    def on_batch(self, values: list[TelemetryBatch]) -> tuple[list[OutMsg], bool]:
        return self.engine.process(TelemetryBatch.concat(values)), False

    def on_notify(self) -> tuple[list[OutMsg], bool]:
        return self.engine.tick(), False

    def on_eof(self) -> tuple[list[OutMsg], bool]:
        return self.engine.flush(), False

    def notify_at(self) -> datetime:
        return datetime.now(UTC) + TICK

    def snapshot(self) -> TwinStore:
        return self.engine.store.snapshot()
