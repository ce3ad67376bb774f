"""Drive the dataflow's own steps (decode -> shard engines) in-process over recorded chunks.

`train` uses it to compute features with exactly the kernels that serve, so train and serve cannot
drift; it is the graph of pipelines/flow.py minus Bytewax, not a re-implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from operators.batches import OutMsg, RawBatch
from operators.engine import ShardEngine, Windows
from operators.fastdecode import decode_batch
from operators.policy import Decisions
from operators.simulator import FleetSimulator, SimConfig
from operators.twin_store import TwinStore
from pipelines.flow import Runtime
from schemas.features import N_FEATURES


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


def run_offline(chunks: Iterable[tuple[list[bytes], list[bytes]]], rt: Runtime,
                topic: str = "offline") -> OfflineRun:
    """Feed (keys, values) chunks, as one partition, through decode and per-shard engines."""
    def raws() -> Iterable[RawBatch]:
        offset = 0
        for keys, values in chunks:
            offsets = np.arange(offset, offset + len(values), dtype=np.int64)
            offset += len(values)
            yield RawBatch(topic, 0, offsets, list(keys), list(values))
    return run_batches(raws(), rt)


def run_batches(raws: Iterable[RawBatch], rt: Runtime) -> OfflineRun:
    """Feed raw batches (any partitions, in the given order) through the flow's steps; flush."""
    log = WindowLog()
    engines: dict[int, ShardEngine] = {}
    outputs: list[OutMsg] = []
    events = 0
    for raw in raws:
        events += len(raw)
        decoded = decode_batch(raw, rt.types, rt.keys, rt.decode)
        outputs += decoded.errs
        for shard, part in decoded.oks.split_by_shard():
            eng = engines.get(shard)
            if eng is None:
                eng = engines[shard] = ShardEngine.fresh(rt.engine)
                eng.on_windows.append(log)
            outputs += eng.process(part)
    for eng in engines.values():
        outputs += eng.flush()
    return OfflineRun(outputs, log, events)


def run_fleet(rt: Runtime, sim: SimConfig, desc: str) -> tuple[OfflineRun, FleetSimulator]:
    """A simulated fleet through the offline flow, with a progress bar; the run and the fleet."""
    fleet = FleetSimulator(sim, rt.types, rt.keys)
    bar = tqdm(total=fleet.expected_events(), desc=desc, unit="ev", unit_scale=True, leave=False)

    def chunks() -> Iterator[tuple[list[bytes], list[bytes]]]:
        for b in fleet.batches():
            bar.update(len(b.values))
            yield b.keys, b.values

    run = run_offline(chunks(), rt)
    bar.close()
    return run, fleet
