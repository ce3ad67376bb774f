"""The Bytewax shim around ShardEngine: one stateful_batch logic per state shard.

A shard's items are telemetry batches and activity batches (its devices' commands); the commands go
to the desired-state tracker, which also judges every telemetry batch for drift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bytewax.operators import StatefulBatchLogic

from twinguard.operators.batches import OutMsg, TelemetryBatch
from twinguard.operators.decode.activity import ActivityBatch
from twinguard.operators.settings import ActivityConfig
from twinguard.operators.twin.desired import ControlTable, DesiredTracker
from twinguard.operators.twin.engine import EngineContext, ShardEngine
from twinguard.operators.twin.store import TwinStore

TICK = timedelta(seconds=1)
ShardItem = TelemetryBatch | ActivityBatch


class ShardLogic(StatefulBatchLogic[ShardItem, OutMsg, TwinStore]):
    """Feeds a shard's batches to its engine; ticks close idle windows and emit twins."""

    def __init__(self, ctx: EngineContext, resume: TwinStore | None,
                 control: ControlTable | None = None, activity: ActivityConfig | None = None
                 ) -> None:
        activity = activity or ActivityConfig()
        if resume is None:
            self.engine = ShardEngine.fresh(ctx)
        else:  # idle time is measured from now: downtime must not push the watermark forward
            resume.part_wall[:] = ctx.now()
            self.engine = ShardEngine(ctx, resume.upgrade(ctx.types.firmware))
        self.desired = DesiredTracker(ctx.types, control or ControlTable.from_types(ctx.types),
                                      activity.command_grace_ms, ctx.detection,
                                      ctx.pipeline.window_ms * ctx.pipeline.long_windows,
                                      activity.pending_command_ttl_s, activity.max_pending_commands)
        self.engine.on_batch.append(self.desired)
        self.engine.on_windows.append(self.desired.explain)

    def on_batch(self, values: list[ShardItem]) -> tuple[list[OutMsg], bool]:
        self.engine.pin_model()  # one model for the whole activation (operators/registry/slot.py)
        out: list[OutMsg] = []
        run: list[TelemetryBatch] = []  # consecutive telemetry batches go to the engine as one
        for v in values:
            if isinstance(v, TelemetryBatch):
                run.append(v)
                continue
            if run:
                out += self.engine.process(TelemetryBatch.concat(run))
                run = []
            out += self.desired.apply(self.engine, v)
        if run:
            out += self.engine.process(TelemetryBatch.concat(run))
        return out, False

    def on_notify(self) -> tuple[list[OutMsg], bool]:
        self.engine.pin_model()
        return self.engine.tick() + self.desired.expire(self.engine), False

    def on_eof(self) -> tuple[list[OutMsg], bool]:
        self.engine.pin_model()
        return self.engine.flush() + self.desired.flush(self.engine), False

    def notify_at(self) -> datetime:
        return datetime.now(UTC) + TICK

    def snapshot(self) -> TwinStore:
        return self.engine.store.snapshot()
