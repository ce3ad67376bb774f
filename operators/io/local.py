"""Embedded source and file sink: run the same dataflow in-process with no Kafka (demo, tests)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from twinguard.operators.batches import OutMsg, RawBatch

SIM_TOPIC = "embedded-simulator"
# (keys, values) of telemetry, or (keys, values, topic) for another topic (e.g. activity)
Chunk = tuple[list[bytes], list[bytes]] | tuple[list[bytes], list[bytes], str]


class _ChunkPartition(StatefulSourcePartition[RawBatch, int]):
    """Replays an iterator of (keys, values) chunks as RawBatches; resumes by skipping chunks."""

    def __init__(self, chunks: Iterator[Chunk], skip: int,
                 on_chunk: Callable[[int], None] | None) -> None:
        self.chunks, self.done, self.offset, self.on_chunk = chunks, 0, 0, on_chunk
        for _ in range(skip):
            self.offset += len(next(self.chunks)[0])
            self.done += 1

    def next_batch(self) -> list[RawBatch]:
        chunk = next(self.chunks)  # StopIteration ends the partition
        keys, values = chunk[0], chunk[1]
        topic = chunk[2] if len(chunk) == 3 else SIM_TOPIC  # noqa: PLR2004 - (keys, values, topic)
        offsets = np.arange(self.offset, self.offset + len(values), dtype=np.int64)
        self.offset += len(values)
        self.done += 1
        if self.on_chunk is not None:
            self.on_chunk(len(values))
        return [RawBatch(topic, 0, offsets, list(keys), list(values))]

    def snapshot(self) -> int:
        return self.done


class ChunkSource(FixedPartitionedSource[RawBatch, int]):
    """One partition fed by `make_chunks()` (called afresh on every start, e.g. a seeded simulator)."""

    def __init__(self, make_chunks: Callable[[], Iterator[Chunk]],
                 on_chunk: Callable[[int], None] | None = None) -> None:
        self.make_chunks, self.on_chunk = make_chunks, on_chunk

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _ChunkPartition:
        return _ChunkPartition(self.make_chunks(), resume_state or 0, self.on_chunk)


class _FilePartition(StatelessSinkPartition[OutMsg]):
    def __init__(self, directory: Path, suffix: str) -> None:
        self.directory, self.suffix = directory, suffix
        self.files: dict[str, IO[bytes]] = {}

    def write_batch(self, items: list[OutMsg]) -> None:
        for m in items:
            f = self.files.get(m.role)
            if f is None:
                f = self.files[m.role] = (self.directory / f"{m.role}{self.suffix}.jsonl").open("ab")
            f.write(m.value + b"\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()


class JsonLinesSink(DynamicSink[OutMsg]):
    """`<dir>/<role>.jsonl` per output role (one file set per worker when there are several)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FilePartition:
        self.directory.mkdir(parents=True, exist_ok=True)
        return _FilePartition(self.directory, f".w{worker_index}" if worker_count > 1 else "")


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """All JSON objects of a JSON-lines file ([] when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
