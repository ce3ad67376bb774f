"""twinguard's production dataflow on Kafka, in a child process, with counting source partitions.

The graph is `twinguard.pipelines.flow.build_flow` with `kafka_source(cfg)` exactly as `twinguard run`
builds it
(same decode, shard engines, Kafka sink, recovery off, epoch = recovery.snapshot_interval_s). The only
addition is a thin wrapper around each source partition that records when messages were handed to
the dataflow and ends the partition after `idle` seconds without input (and, for paced runs, only
after the producer said it is done). Configuration comes from TWINGUARD__* variables.

    python -m twinguard.benchmarks.run_child --stats DIR --idle S [--ready FILE] [--done FILE]
        [--process-id I --addresses "h:p;h:p"]   (one of several processes, e.g. sustained -p 2)
    python -m bytewax.run "twinguard.benchmarks.run_child:scaling_flow()" -i 0 -a "h:p;h:p"   (env BENCH_*)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from twinguard.operators.batches import RawBatch
from twinguard.operators.io.kafka import KafkaBatchSource
from twinguard.pipelines import heap
from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import Runtime, build_flow, kafka_sink, kafka_source
from twinguard.pipelines.offline import warm_up


class _CountingPartition(StatefulSourcePartition[RawBatch, int]):
    def __init__(self, inner: StatefulSourcePartition[RawBatch, int], name: str, stats_dir: Path,
                 idle_s: float, ready: Path | None, done: Path | None) -> None:
        self.inner, self.name, self.stats_dir = inner, name, stats_dir
        self.idle_s, self.ready, self.done = idle_s, ready, done
        self.lags_ms: list[float] = []  # paced runs: poll time - event time of the batch's last msg
        self.messages = 0
        self.polls = 0
        # wall time between this partition's polls once input flows: a stalled worker (GC, a slow
        # step, a starved CPU) shows here, while the lag of the batch's newest message does not
        self.gaps_ms: list[float] = []
        self.last_poll: float | None = None
        self.first_t: float | None = None  # wall time the first message was in hand
        self.last_t: float | None = None  # ... the last message
        self.drained_t: float | None = None  # first empty poll after the last message
        self.cpu: dict[str, float] = {}  # process and broker CPU seconds at first_t / drained_t
        self.last_data = time.monotonic()
        self.written = False

    def next_batch(self) -> list[RawBatch]:
        if self.polls == 0 and self.ready is not None:
            self.ready.touch()
        self.polls += 1
        out = list(self.inner.next_batch())
        now = time.time()
        if self.done is not None and self.first_t is not None and self.last_poll is not None:
            self.gaps_ms.append(round((now - self.last_poll) * 1000, 1))
        self.last_poll = now
        n = sum(len(b) for b in out)
        if n:
            self.messages += n
            if self.first_t is None:
                self.first_t = now
                self.cpu.update(_cpu_now("first"))
            self.last_t, self.drained_t = now, None
            self.last_data = time.monotonic()
            if self.done is not None:
                self._lag(out[-1], now)
            return out
        if self.last_t is not None and self.drained_t is None:
            self.drained_t = now
            self.cpu.update(_cpu_now("drained"))
        producer_done = self.done is None or self.done.exists()
        if producer_done and time.monotonic() - self.last_data > self.idle_s:
            self._write()
            raise StopIteration
        return out

    def _lag(self, batch: RawBatch, now: float) -> None:
        """How far behind event time the dataflow consumes: newest ts among the batch's last few
        messages (a replayed message carries an old ts, so one message alone could mislead)."""
        newest = None
        for v in batch.values[-5:]:
            try:
                ts = msgspec.json.decode(v or b"{}").get("ts")
            except msgspec.DecodeError:
                continue
            if isinstance(ts, int) and (newest is None or ts > newest):
                newest = ts
        if newest is not None:
            self.lags_ms.append(round(now * 1000 - newest, 1))

    def next_awake(self) -> datetime | None:
        return self.inner.next_awake()

    def snapshot(self) -> int:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()
        self._write()

    def _write(self) -> None:
        if self.written:
            return
        self.written = True
        doc = {"partition": self.name, "pid": os.getpid(),
               "process_id": os.environ.get("BYTEWAX_PROCESS_ID"), "messages": self.messages,
               "polls": self.polls, "first_t": self.first_t, "last_t": self.last_t,
               "drained_t": self.drained_t, "cpu_s": self.cpu, "consume_lag_ms": self.lags_ms,
               "poll_gap_ms": self.gaps_ms}
        path = self.stats_dir / f"part-{os.getpid()}-{self.name}.json"
        path.write_text(json.dumps(doc))


def _cpu_now(at: str) -> dict[str, float]:
    """CPU seconds so far of this process (all threads, librdkafka's too) and, when
    BENCH_BROKER_PID names it, of the broker: how the cores were shared during the measurement."""
    out = {f"process_{at}": time.process_time()}
    pid = os.environ.get("BENCH_BROKER_PID")
    if pid:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[f"broker_{at}"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return out


class CountingSource(FixedPartitionedSource[RawBatch, int]):
    """The project's KafkaBatchSource, each partition wrapped by a counter with an idle stop."""

    def __init__(self, inner: KafkaBatchSource, stats_dir: Path, idle_s: float,
                 ready: Path | None = None, done: Path | None = None) -> None:
        self.inner, self.stats_dir, self.idle_s = inner, stats_dir, idle_s
        self.ready, self.done = ready, done

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None
                   ) -> _CountingPartition:
        part = self.inner.build_part(step_id, for_part, resume_state)
        return _CountingPartition(part, for_part, self.stats_dir, self.idle_s, self.ready,
                                  self.done)


def _flow(stats_dir: Path, idle_s: float, ready: Path | None, done: Path | None) -> Dataflow:
    cfg = load_config(os.environ.get("TWINGUARD_CONFIG"))
    rt = Runtime.from_config(cfg)
    warm_up(rt)
    stats_dir.mkdir(parents=True, exist_ok=True)
    source = CountingSource(kafka_source(cfg), stats_dir, idle_s, ready, done)
    # recovery is off here (no -r, no recovery config), as in `twinguard run` without a store
    flow = build_flow(cfg, source=source, runtime=rt, sink=kafka_sink(cfg, recovery=False),
                      snapshots=False)
    heap.settle()  # as `twinguard run` does before it runs the flow
    return flow


def scaling_flow() -> Dataflow:
    """Factory for `python -m bytewax.run` (several processes): BENCH_STATS_DIR, BENCH_IDLE_S."""
    return _flow(Path(os.environ["BENCH_STATS_DIR"]), float(os.environ.get("BENCH_IDLE_S", "3")),
                 None, None)


def main() -> None:
    from bytewax._bytewax import cli_main

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stats", required=True, help="folder for per-partition counters")
    ap.add_argument("--idle", type=float, default=3.0, help="end after this long without input")
    ap.add_argument("--ready", default=None, help="touched when the source first polls")
    ap.add_argument("--done", default=None, help="do not end before this file exists")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--process-id", type=int, default=None,
                    help="this process's index in a cluster (with --addresses)")
    ap.add_argument("--addresses", default=None, help="host:port;host:port of every process")
    a = ap.parse_args()
    cfg = load_config(os.environ.get("TWINGUARD_CONFIG"))
    flow = _flow(Path(a.stats), a.idle, Path(a.ready) if a.ready else None,
                 Path(a.done) if a.done else None)
    t0 = time.time()
    cluster = {} if a.addresses is None else {"process_id": a.process_id,
                                              "addresses": a.addresses.split(";")}
    cli_main(flow, workers_per_process=a.workers,  # type: ignore[no-untyped-call]
             epoch_interval=timedelta(seconds=cfg.recovery.snapshot_interval_s), **cluster)
    (Path(a.stats) / "process.json").write_text(json.dumps({"run_s": time.time() - t0}))


if __name__ == "__main__":
    main()
