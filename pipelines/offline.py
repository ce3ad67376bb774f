"""Drive the dataflow's own steps (decode -> shard logics, user logics) in-process over recorded chunks.

`train` uses it to compute features with exactly the kernels that serve, so train and serve cannot
drift; it is the graph of pipelines/flow.py minus Bytewax (same decode, same ShardLogic and UserLogic,
no wall-clock ticks: windows close by the data's watermark and at the end), not a re-implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.detect.policy import Decisions
from twinguard.operators.twin.engine import Windows
from twinguard.operators.twin.logic import ShardLogic
from twinguard.operators.twin.store import TwinStore
from twinguard.operators.users.insider import UserLogic
from twinguard.pipelines.flow import Runtime, by_shard, by_user, decode_step
from twinguard.pipelines.sim.activity import ActivitySimConfig, ActivitySimulator
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.features import N_FEATURES


@dataclass
class WindowLog:
    """Every closed (final) window: features, device id, window bounds, decided class."""

    features: list[npt.NDArray[np.float64]] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)

    def __call__(self, store: TwinStore, w: Windows, d: Decisions) -> None:
        final = w.meta[:, 6] == 1  # early rows are partial windows
        self.features.append(w.features[final])
        self.device_ids += [store.device_ids[s] for s in w.meta[final, 0].tolist()]
        self.starts += w.meta[final, 1].tolist()
        self.ends += w.meta[final, 2].tolist()
        self.decided += d.cls[final].tolist()

    def matrix(self) -> npt.NDArray[np.float64]:
        return np.vstack(self.features) if self.features else np.zeros((0, N_FEATURES))


@dataclass
class OfflineRun:
    outputs: list[OutMsg]
    windows: WindowLog
    events_in: int


Chunk = tuple[list[bytes], list[bytes]] | tuple[list[bytes], list[bytes], str]


def run_offline(chunks: Iterable[Chunk], rt: Runtime, topic: str | None = None) -> OfflineRun:
    """Feed (keys, values[, topic]) chunks through the flow's steps, one partition per topic
    (telemetry by default; the activity topic's chunks go to the shard and user logics as in the flow)."""
    def raws() -> Iterable[RawBatch]:
        offsets: dict[str, int] = {}
        for keys, values, *rest in chunks:
            t = rest[0] if rest else (topic or rt.cfg.topics.telemetry)
            first = offsets.get(t, 0)
            offsets[t] = first + len(values)
            yield RawBatch(t, 0, np.arange(first, first + len(values), dtype=np.int64), list(keys),
                           list(values))
    return run_batches(raws(), rt)


def run_batches(raws: Iterable[RawBatch], rt: Runtime) -> OfflineRun:
    """Feed raw batches (any topics and partitions, in the given order) through the flow's steps."""
    log = WindowLog()
    shards: dict[str, ShardLogic] = {}
    users: dict[str, UserLogic] = {}
    n, a = rt.cfg.pipeline.shards, rt.cfg.activity
    outputs: list[OutMsg] = []
    events = 0
    for raw in raws:
        events += len(raw)
        decoded = decode_step(rt, raw)
        outputs += decoded.errs
        for key, item in by_shard(n, decoded):
            logic = shards.get(key)
            if logic is None:
                logic = shards[key] = ShardLogic(rt.engine, None, rt.control, a)
                logic.engine.on_windows.append(log)
            outputs += logic.on_batch([item])[0]
        for key, acts in by_user(n, decoded):
            if key not in users:
                users[key] = UserLogic(a, rt.cfg.response.dry_run, None)
            outputs += users[key].on_batch([acts])[0]
    for logic in shards.values():
        outputs += logic.on_eof()[0]
    for user in users.values():
        outputs += user.on_eof()[0]
    return OfflineRun(outputs, log, events)


def warm_up(rt: Runtime) -> None:
    """Load the Numba kernels (disk cache) and the model before the clock starts: a tiny fleet
    through the flow's steps, so the first real batch does not stall for seconds."""
    tiny = FleetSimulator(SimConfig(devices=10, duration_s=15, seed=1), rt.types, rt.keys)
    run_offline(((b.keys, b.values) for b in tiny.batches()), rt)


def run_fleet(rt: Runtime, sim: SimConfig, desc: str, operators: ActivitySimConfig | None = None
              ) -> tuple[OfflineRun, FleetSimulator]:
    """A simulated fleet (with operators on the activity topic, if given) through the offline flow,
    with a progress bar; the run and the fleet (whose labels include the operators' scenarios)."""
    fleet = FleetSimulator(sim, rt.types, rt.keys)
    ops = ActivitySimulator(fleet, operators) if operators is not None else None
    total = fleet.expected_events() + (len(ops.rows) if ops else 0)
    bar = tqdm(total=total, desc=desc, unit="ev", unit_scale=True, leave=False)

    def chunks() -> Iterator[Chunk]:
        if ops is None:
            for b in fleet.batches():
                bar.update(len(b.values))
                yield b.keys, b.values
            return
        for role, keys, values, _ts in ops.interleave(fleet.batches()):
            bar.update(len(values))
            yield (keys, values, rt.cfg.topics.activity) if role == "activity" else (keys, values)

    run = run_offline(chunks(), rt)
    bar.close()
    return run, fleet
