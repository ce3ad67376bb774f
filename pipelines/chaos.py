"""`twinguard chaos`: a reliability report — SIGKILL the dataflow, stop the broker, account every message.

A live simulated fleet (event time = wall-clock time) is produced to fresh topics while `twinguard run`
with Bytewax recovery is killed and restarted N times and the broker is stopped for S seconds. The
output topics are then audited: every input is processed or dead-lettered exactly once, re-emitted
threats keep their ids, and the distinct threats are compared with an in-process run over the same
input. Differences are located relative to the disturbances and checked for order sensitivity (does
the reference itself change when only the interleaving of the partitions changes?).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaException, TopicPartition

from operators.batches import RawBatch
from operators.integrity import KeyRing
from operators.kafka_io import produce_all, producer, read_topic, scan_topic
from operators.simulator import FleetSimulator, SimConfig
from pipelines import kafka_admin, kafka_local
from pipelines.config import Config
from pipelines.flow import Runtime
from pipelines.offline import run_batches
from schemas.device_types import load_device_types

log = logging.getLogger(__name__)

MALFORMED = (  # each must end as exactly one dead letter
    b"{oops",
    b"",
    b'{"device_id":"x-chaos","type":"toaster","ts":1,"seq":1,"signals":{}}',
    b"\xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'{"device_id": 5}',
)
MALFORMED_KEY = b"chaos-malformed"
CHUNK_EVENTS = 500  # produce in small chunks so arrival follows event time closely
LEAD_S = 1.0  # first event time, seconds after the fleet is planned
KILL_DELAY_S = (0.5, 3.0)
OUTPUT_TIMEOUT_S = 120.0  # a run that writes nothing for this long is broken
FINISH_TIMEOUT_S = 600.0
LOG_PATTERN = re.compile(r"WARNING|ERROR|Traceback|%[0-4]\|")
Chunks = Iterator[tuple[int, list[bytes], list[bytes]]]  # (send time ms, keys, values)
REPO_ROOT = Path(__file__).resolve().parent.parent
# what the dataflow runs: a change mid-run means restarted runs and the reference differ in code
CODE_DIRS = ("operators", "pipelines", "schemas")
CODE_SUFFIXES = (".py", ".toml", ".json", ".ubj")


class ChaosError(RuntimeError):
    """The chaos run could not be carried out (not: the dataflow failed it); says what broke."""


@dataclass(frozen=True)
class ChaosConfig:
    """What to inflict: kills, broker outage, input size; where to run."""

    kills: int = 10
    outage_s: float = 30.0
    events: int = 300_000
    brokers: str | None = None  # None: a private broker (the only kind chaos may stop)
    seed: int = 7
    duration_s: float | None = None  # of live telemetry; None: long enough for the schedule
    until_idle_s: float = 8.0
    snapshot_interval_s: float = 1.0
    partitions: int = 2
    keep_dir: Path | None = None  # keep run logs here (default: a temp dir, kept only on failure)

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a meaningful report."""
        if self.kills < 0 or self.outage_s < 0:
            raise ValueError(f"kills and outage seconds must be >= 0, got {self.kills}, "
                             f"{self.outage_s}")
        if self.events < 1000:
            raise ValueError(f"events must be >= 1000 for a meaningful run, got {self.events}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")

    def duration(self) -> float:
        """Seconds of live telemetry: the kill and outage schedule must end while input flows."""
        if self.duration_s is not None:
            return self.duration_s
        # ~5 s start-up + up to 3 s before each kill; outage run: start-up, outage, broker restart
        return 20.0 + 8.0 * self.kills + (self.outage_s + 30.0 if self.outage_s else 0.0)


@dataclass
class RunRecord:
    """One `twinguard run` process: why it ended, when (epoch ms), and its log."""

    index: int
    role: str  # kill | outage | final
    log_path: Path
    started_ms: int
    first_output_ms: int | None = None
    ended_ms: int | None = None
    exit_code: int | None = None
    killed: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view (durations in seconds)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "log_path"}
        d["startup_s"] = _secs(self.first_output_ms, self.started_ms)
        d["lifetime_s"] = _secs(self.ended_ms, self.started_ms)
        return d


@dataclass
class Outage:
    """The broker outage: when it went down and came back (epoch ms)."""

    down_ms: int = 0
    up_ms: int = 0
    produced_at_down: int = 0
    produced_at_up: int = 0


@dataclass
class Broker:
    """The Kafka the chaos run uses; a private one can be stopped and restarted."""

    brokers: str
    port: int | None = None
    data_dir: Path | None = None

    @property
    def private(self) -> bool:
        """True when this run started the broker (and may stop it)."""
        return self.data_dir is not None


def run_chaos(cfg: Config, cc: ChaosConfig) -> dict[str, Any]:
    """Run the whole experiment and return the report (see module docstring)."""
    t0 = time.monotonic()
    work = Path(cc.keep_dir or tempfile.mkdtemp(prefix="twinguard-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    ok = False
    try:
        with _broker(cc, work) as broker:
            report = _with_topics(cfg, cc, broker, work)
        report["timings"]["total_s"] = round(time.monotonic() - t0, 1)
        report["work_dir"] = str(work)
        ok = bool(report["ok"])
        return report
    finally:
        if ok and cc.keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log.info("chaos: logs kept in %s", work)


@contextmanager
def _broker(cc: ChaosConfig, work: Path) -> Iterator[Broker]:
    """The given brokers, or a private broker with its own state dir, stopped at the end."""
    if cc.brokers:
        yield Broker(cc.brokers)
        return
    with _env("TWINGUARD_STATE_DIR", str(work / "kafka-state")):
        port, data = kafka_local.free_port(), work / "kafka-data"
        info = kafka_local.up(port, data)
        log.info("chaos: private broker %s (data %s)", info.brokers, data)
        try:
            yield Broker(info.brokers, port, data)
        finally:
            kafka_local.down()


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block, restoring the previous value after."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _with_topics(cfg: Config, cc: ChaosConfig, broker: Broker, work: Path) -> dict[str, Any]:
    """Create uniquely named topics, run the experiment on them, delete them (also on failure)."""
    suffix = uuid.uuid4().hex[:12]
    names: dict[str, Any] = {role: f"{name}.chaos-{suffix}" for role, name in cfg.topics.all().items()}
    cfg = cfg.replace(kafka={"brokers": broker.brokers},
                      topics={**names, "partitions": cc.partitions})
    settings = cfg.kafka.client_settings()
    kafka_admin.create_topics(settings, kafka_admin.topic_specs(cfg))
    try:
        return Experiment(cfg, cc, broker, work).run()
    finally:
        try:
            kafka_admin.delete_topics(settings, cfg.topics.all().values())
        except kafka_admin.KafkaAdminError as e:  # never mask the real outcome
            log.warning("chaos: could not delete the chaos topics: %s", e)


# ------------------------------------------------------------------------------------ input


def plan_fleet(cc: ChaosConfig, keys: KeyRing, start_ms: int) -> FleetSimulator:
    """A fleet whose default per-type rates yield about cc.events messages over the duration."""
    types, dur = load_device_types(), cc.duration()
    devices = max(1, round(cc.events / (dur * float(types.nominal_hz.mean()))))
    fleet = FleetSimulator(SimConfig(devices=devices, duration_s=dur, seed=cc.seed,
                                     start_ms=start_ms), types, keys)
    # attacks add messages of their own: rescale once so the total lands near cc.events
    devices = max(1, round(devices * cc.events / fleet.expected_events()))
    return FleetSimulator(SimConfig(devices=devices, duration_s=dur, seed=cc.seed,
                                    start_ms=start_ms), types, keys)


def malformed_schedule(fleet: FleetSimulator, rng: random.Random) -> list[tuple[int, bytes]]:
    """(event time, value) for each malformed message, spread over the live period."""
    span = fleet.dur_ms
    return sorted((fleet.start_ms + rng.randrange(span), bad) for bad in MALFORMED)


def input_chunks(fleet: FleetSimulator, malformed: list[tuple[int, bytes]]) -> Chunks:
    """(send time ms, keys, values) chunks in event-time order, malformed ones slotted in."""
    pending = list(malformed)
    for b in fleet.batches(CHUNK_EVENTS):
        first = int(b.ts_ms[0])
        while pending and pending[0][0] <= first:
            at, bad = pending.pop(0)
            yield at, [MALFORMED_KEY], [bad]
        yield first, list(b.keys), list(b.values)
    for at, bad in pending:
        yield at, [MALFORMED_KEY], [bad]


class PacedProducer(threading.Thread):
    """Produces the input at event-time pace (a live fleet); keeps going through a broker outage."""

    def __init__(self, settings: dict[str, Any], topic: str, chunks: Chunks) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.settings, self.topic, self.chunks = settings, topic, chunks
        self.produced = 0
        self.errors: list[str] = []
        self.failure: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        """Produce every chunk at its time, then wait until the broker has all of them."""
        try:
            # librdkafka's connection-refused lines during the outage are expected: keep quiet
            p = producer(self.settings, log_level=0)
            for at, keys, values in self.chunks:
                self.stopping.wait(max(0.0, at / 1000 - time.time()))
                if self.stopping.is_set():
                    return
                produce_all(p, self.topic, list(zip(keys, values, strict=True)), self.errors.append)
                self.produced += len(values)
            left = p.flush(FINISH_TIMEOUT_S)
            if left:
                self.errors.append(f"{left} telemetry messages still undelivered after "
                                   f"{FINISH_TIMEOUT_S:.0f} s")
        except BaseException as e:  # re-raised by the orchestrator, with context
            self.failure = e


# ------------------------------------------------------------------------------ the runs


class OutputWatch:
    """Sum of the high watermarks of the output topics: has the dataflow written anything new?"""

    def __init__(self, settings: dict[str, Any], topics: list[str], partitions: int) -> None:
        self.consumer = Consumer({**settings, "group.id": "twinguard-chaos-watch",
                                  "enable.auto.commit": False, "log_level": 0})
        self.parts = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    def total(self) -> int | None:
        """Messages in the output topics, or None while the broker does not answer."""
        try:
            return sum(self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1]
                       for tp in self.parts)
        except KafkaException:
            return None

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


class DataflowRun:
    """One `twinguard run` subprocess; a reaper thread notes when and how it ended."""

    def __init__(self, rec: RunRecord, cmd: list[str]) -> None:
        self.rec = rec
        with rec.log_path.open("wb") as f:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reaper = threading.Thread(target=self._reap, name=f"reap-{rec.index}", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        code = self.proc.wait()
        self.rec.exit_code, self.rec.ended_ms = code, _now_ms()

    def alive(self) -> bool:
        """True until the process has ended and been reaped."""
        return self._reaper.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to timeout seconds for the end; True if it ended."""
        self._reaper.join(timeout)
        return not self._reaper.is_alive()

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early if the process ends."""
        self.wait(seconds)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a machine or OOM kill."""
        if self.alive():
            self.rec.killed = True
            self.proc.send_signal(signal.SIGKILL)
        self.wait()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _secs(later: int | None, earlier: int | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) / 1000, 2)


class Experiment:
    """Input, kills, outage, final run, audit and reference for one set of topics."""

    def __init__(self, cfg: Config, cc: ChaosConfig, broker: Broker, work: Path) -> None:
        self.cfg, self.cc, self.broker, self.work = cfg, cc, broker, work
        self.rng = random.Random(cc.seed)
        self.runs: list[RunRecord] = []
        self.outage: Outage | None = None
        self.outage_run: DataflowRun | None = None
        self._procs: list[DataflowRun] = []
        self.failures: list[str] = []
        self.config_file = work / "twinguard.toml"
        self.timings: dict[str, float] = {}
        self.input_end_ms = 0
        self.code: dict[str, str] = {}

    def run(self) -> dict[str, Any]:
        """Produce live input, inflict kills and the outage, finish, then audit the topics."""
        self.code = code_fingerprint()
        keys = KeyRing.from_config(self.cfg.integrity.key_file, self.cfg.integrity.master_key_env)
        fleet = plan_fleet(self.cc, keys, _now_ms() + int(LEAD_S * 1000))
        malformed = malformed_schedule(fleet, self.rng)
        log.info("chaos: %d devices, %.0f s of live telemetry (~%d messages), %d kills, "
                 "%.0f s broker outage; logs in %s", fleet.cfg.devices, fleet.cfg.duration_s,
                 fleet.expected_events(), self.cc.kills, self.cc.outage_s, self.work)
        write_config_file(self.cfg, self.config_file)
        settings = self.cfg.kafka.client_settings()
        prod = PacedProducer(settings, self.cfg.topics.telemetry, input_chunks(fleet, malformed))
        watch = OutputWatch(settings, [self.cfg.topics.twins, self.cfg.topics.threats],
                            self.cc.partitions)
        t0 = time.monotonic()
        prod.start()
        try:
            self._inflict(prod, watch)
            self._finish(prod)
        finally:
            prod.stopping.set()
            watch.close()
            for r in self._live:
                r.kill()
        self.timings["chaos_s"] = round(time.monotonic() - t0, 1)
        return self._report(fleet, malformed, prod)

    # -- phases

    def _inflict(self, prod: PacedProducer, watch: OutputWatch) -> None:
        """N kill/restart cycles, then (private broker only) the outage during a later run."""
        for _ in range(self.cc.kills):
            self._kill_cycle(prod, watch)
            self._check_producer(prod)
        if self.cc.outage_s > 0 and self.broker.private:
            self._outage_cycle(prod, watch)
        elif self.cc.outage_s > 0:
            log.warning("chaos: --brokers given: an external broker is never stopped; no outage")

    def _kill_cycle(self, prod: PacedProducer, watch: OutputWatch) -> None:
        """Start a run, wait for its first output, SIGKILL it a random moment later."""
        run = self._start("kill")
        if not self._await_output(run, watch):
            return
        run.sleep(self.rng.uniform(*KILL_DELAY_S))
        if not run.alive():
            self._problem(run, "ended on its own before the kill")
            return
        run.kill()
        log.info("chaos: kill %d after %.1f s (%d messages produced so far)",
                 sum(r.killed for r in self.runs), _secs(run.rec.ended_ms, run.rec.started_ms),
                 prod.produced)

    def _outage_cycle(self, prod: PacedProducer, watch: OutputWatch) -> None:
        """Start a run, wait for output, stop the broker for outage_s, start it again."""
        assert self.broker.port is not None and self.broker.data_dir is not None  # noqa: S101
        run = self.outage_run = self._start("outage")
        if not self._await_output(run, watch):
            return
        run.sleep(self.rng.uniform(*KILL_DELAY_S))
        out = self.outage = Outage(produced_at_down=prod.produced, down_ms=_now_ms())
        kafka_local.down()
        log.info("chaos: broker stopped for %.0f s (%d messages produced so far)",
                 self.cc.outage_s, prod.produced)
        time.sleep(self.cc.outage_s)  # the schedule holds even if the run ends meanwhile
        restart_broker(self.broker.port, self.broker.data_dir)
        out.up_ms, out.produced_at_up = _now_ms(), prod.produced
        log.info("chaos: broker back after %.1f s; the outage run is %s",
                 (out.up_ms - out.down_ms) / 1000,
                 "running" if run.alive() else f"gone (exit {run.rec.exit_code})")

    def _finish(self, prod: PacedProducer) -> None:
        """Let the input end; the outage run (or else a new final run) stops by --until-idle."""
        prod.join(self.cc.duration() + FINISH_TIMEOUT_S)
        self._check_producer(prod)
        if prod.is_alive():
            raise ChaosError("the input producer did not finish in time")
        self.input_end_ms = _now_ms()
        run = self.outage_run
        if run is not None and (run.alive() or run.rec.exit_code == 0):
            self._await_exit(run)
            if (run.rec.ended_ms or 0) >= self.input_end_ms:
                return
            log.warning("chaos: the outage run stopped (exit %s) before the input ended: "
                        "--until-idle counted the broker outage as idle input; starting a "
                        "final run for the rest", run.rec.exit_code)
        self._await_exit(self._start("final"))

    # -- process handling

    @property
    def _live(self) -> list[DataflowRun]:
        return [r for r in self._procs if r.alive()]

    def _start(self, role: str) -> DataflowRun:
        """Start `twinguard run` with recovery; its stdout+stderr go to a log file."""
        n = len(self.runs)
        rec = RunRecord(n, role, self.work / f"run-{n:02d}-{role}.log", _now_ms())
        self.runs.append(rec)
        cmd = [sys.executable, "-m", "pipelines.cli", "--config", str(self.config_file), "run",
               "--recovery-dir", str(self.work / "recovery"),
               "--snapshot-interval", str(self.cc.snapshot_interval_s),
               "--until-idle", str(self.cc.until_idle_s)]
        run = DataflowRun(rec, cmd)
        self._procs.append(run)
        return run

    def _await_output(self, run: DataflowRun, watch: OutputWatch) -> bool:
        """Wait until the output topics grow while this run lives; False if it ended first."""
        base = watch.total()
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        while time.monotonic() < deadline:
            if not run.alive():
                self._problem(run, "ended before writing any output")
                return False
            now = watch.total()
            if base is None:
                base = now
            elif now is not None and now > base:
                run.rec.first_output_ms = _now_ms()
                return True
            time.sleep(0.2)
        run.kill()
        self._problem(run, f"wrote no output in {OUTPUT_TIMEOUT_S:.0f} s (killed)")
        return False

    def _await_exit(self, run: DataflowRun) -> None:
        """Wait for a run to stop by itself (bounded); anything but exit 0 is a failure."""
        if not run.wait(FINISH_TIMEOUT_S):
            run.kill()
            self._problem(run, f"did not stop within {FINISH_TIMEOUT_S:.0f} s (killed)")
        elif run.rec.exit_code != 0:
            self._problem(run, "exited with an error")

    def _problem(self, run: DataflowRun, what: str) -> None:
        """Record a failure of the dataflow (not of the chaos harness) with its log tail."""
        r = run.rec
        self.failures.append(f"run {r.index} ({r.role}) {what}: exit {r.exit_code}, log "
                             f"{r.log_path}; last lines:\n{_tail(r.log_path)}")
        log.warning("chaos: %s", self.failures[-1])

    @staticmethod
    def _check_producer(prod: PacedProducer) -> None:
        if prod.failure is not None:
            raise ChaosError(f"producing the input failed: {prod.failure!r}") from prod.failure
        if prod.errors:
            raise ChaosError(f"Kafka refused input messages: {prod.errors[:3]}")

    # -- the report

    def _report(self, fleet: FleetSimulator, malformed: list[tuple[int, bytes]],
                prod: PacedProducer) -> dict[str, Any]:
        """Audit the topics, compare with the reference, and assemble the report."""
        t0 = time.monotonic()
        audit = audit_topics(self.cfg, self.cfg.detection.alert_cooldown_ms)
        self.timings["audit_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        rt, topic = Runtime.from_config(self.cfg), self.cfg.topics.telemetry
        parts = key_partitions(self.cfg.kafka.client_settings(), topic)
        ref = reference_run(rt, input_chunks(fleet, malformed), parts,
                            list(range(self.cc.partitions)), topic)
        self.timings["reference_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        sensitive = order_sensitive_ids(rt, lambda: input_chunks(fleet, malformed), parts,
                                        {t["id"] for t in ref["threats"]}, topic)
        self.timings["order_check_s"] = round(time.monotonic() - t0, 1)
        threats = audit.pop("_threats")
        detection = compare_detection(threats, ref["threats"], self._disturbances(), sensitive,
                                      self.cfg.pipeline.window_ms)
        warnings = comparability(changed_files(self.code, code_fingerprint()), threats,
                                 rt.engine.scorer.version)
        for w in warnings:
            log.warning("chaos: %s", w)
        if audit["events_in"] != prod.produced:
            self.failures.append(f"the telemetry topic holds {audit['events_in']} messages but "
                                 f"{prod.produced} were produced")
        report: dict[str, Any] = {
            **audit,
            "events_produced": prod.produced,
            "kills": sum(r.killed for r in self.runs),
            "outage_seconds": self.cc.outage_s if self.outage else 0.0,
            **detection,
            "reference_comparable": not warnings,
            "warnings": warnings,
            "dead_lettered_reference": ref["dead_lettered"],
            "outage": self._outage_summary(),
            "runs": [r.summary() for r in self.runs],
            "failures": self.failures,
            "timings": self.timings,
            "settings": {**dataclasses.asdict(self.cc), "keep_dir": str(self.cc.keep_dir or ""),
                         "devices": fleet.cfg.devices, "duration_s": fleet.cfg.duration_s,
                         "start_ms": fleet.start_ms,  # with seed + devices: the exact input
                         "brokers": self.broker.brokers, "private_broker": self.broker.private,
                         "telemetry_topic": self.cfg.topics.telemetry},
        }
        report["ok"] = verdict(report)
        return report

    def _disturbances(self) -> list[tuple[str, int, int]]:
        """(kind, from ms, to ms): each gap from a run's end to the next run's first output, and
        the broker outage; event time = wall-clock time, so threat windows compare directly."""
        out: list[tuple[str, int, int]] = []
        for prev, nxt in zip(self.runs, self.runs[1:], strict=False):
            if prev.ended_ms is not None:
                end = nxt.first_output_ms or nxt.ended_ms or prev.ended_ms
                out.append(("kill" if prev.killed else "restart", prev.ended_ms, end))
        if self.outage is not None:
            out.append(("outage", self.outage.down_ms, self.outage.up_ms))
        return out

    def _outage_summary(self) -> dict[str, Any] | None:
        """Downtime, what the outage run did, and its warning/error log lines."""
        o, run = self.outage, self.outage_run
        if o is None or run is None:
            return None
        lines = _log_lines(run.rec.log_path)
        return {
            "down_ms": o.down_ms,
            "up_ms": o.up_ms,
            "downtime_s": _secs(o.up_ms, o.down_ms),
            "produced_at_down": o.produced_at_down,
            "produced_at_up": o.produced_at_up,
            "run_exit_code": run.rec.exit_code,
            "run_ended_s_after_broker_up": _secs(run.rec.ended_ms, o.up_ms),
            "run_stopped_before_input_end": (run.rec.ended_ms or 0) < self.input_end_ms,
            "log_line_count": len(lines),
            "log_lines": _summarise_lines(lines),
        }


def restart_broker(port: int, data_dir: Path) -> kafka_local.BrokerInfo:
    """Start the private broker again on its port and data dir (state dir from the environment)."""
    try:
        return kafka_local.up(port, data_dir)
    except kafka_local.KafkaLocalError as e:
        raise ChaosError(f"restarting the broker on port {port} with data {data_dir} failed: {e}"
                         ) from e


def write_config_file(cfg: Config, path: Path) -> Path:
    """The full resolved config as TOML (0600: [kafka.extra] may hold secrets)."""
    lines: list[str] = []
    for section, values in dataclasses.asdict(cfg).items():
        lines.append(f"[{section}]")
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k not in tables]
        for name, table in tables.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


# ------------------------------------------------------------------------------- the audit


def audit_topics(cfg: Config, cooldown_ms: int) -> dict[str, Any]:
    """Accounting of the output topics against the telemetry topic (see the README's contracts)."""
    settings = cfg.kafka.client_settings()
    events_in = sum(kafka_admin.end_offsets(settings, cfg.topics.telemetry).values())
    twins: dict[bytes | None, dict[str, Any]] = {}
    for k, v in read_topic(settings, cfg.topics.twins, timeout_s=300):
        twins[k] = json.loads(v)  # compacted topic: the last value per key wins
    dead = {(d["topic"], d["partition"], d["offset"])
            for d in (json.loads(v) for _, v in read_topic(settings, cfg.topics.deadletter))}
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    processed = sum(int(t["version"]) for t in twins.values())
    return {
        "events_in": events_in,
        "processed": processed,
        "dead_lettered": len(dead),
        "lost": events_in - processed - len(dead),
        "devices": len(twins),
        **threat_duplicates(threats, cooldown_ms),
        "_threats": threats,
    }


def threat_duplicates(threats: list[dict[str, Any]], cooldown_ms: int) -> dict[str, Any]:
    """Re-emitted threats (same device, class, window) and whether they kept the first one's id."""
    first: dict[tuple[Any, ...], str] = {}
    dups = same = 0
    contents: dict[str, set[tuple[Any, ...]]] = {}
    for t in threats:
        key = (t["device_id"], t["threat"], t["window_start"], t["window_end"])
        contents.setdefault(t["id"], set()).add(key)
        if key in first:
            dups += 1
            same += first[key] == t["id"]
        else:
            first[key] = t["id"]
    return {
        "threats_total": len(threats),
        "threats_distinct": len(contents),
        "duplicates": dups,
        "duplicates_with_same_id": same,
        # one id, two different windows: a consumer de-duplicating by id keeps either
        "ids_with_conflicting_content": sorted(i for i, c in contents.items() if len(c) > 1),
        "realerts_within_cooldown": _realerts(first, cooldown_ms),
    }


def _realerts(first: dict[tuple[Any, ...], str], cooldown_ms: int) -> list[dict[str, Any]]:
    """Distinct threats of one device and class closer than the cooldown: one run never emits
    those, so they are a restart re-deciding a window differently (not de-duplicable by id)."""
    by_pair: dict[tuple[Any, Any], list[tuple[int, str]]] = {}
    for (dev, cls, _ws, we), tid in first.items():
        by_pair.setdefault((dev, cls), []).append((int(we), tid))
    out = []
    for (dev, cls), ends in by_pair.items():
        ends.sort()
        for (a, ida), (b, idb) in zip(ends, ends[1:], strict=False):
            if b - a < cooldown_ms and ida != idb:
                out.append({"device_id": dev, "threat": cls, "window_ends": [a, b],
                            "ids": [ida, idb]})
    return out


def reference_run(rt: Runtime, chunks: Chunks, parts: dict[bytes, int], order: list[int],
                  topic: str = "reference") -> dict[str, Any]:
    """The same input through the same decode + engine code in-process: no kills, no outage.

    Every message keeps its Kafka partition (the engine keeps one event-time mark per source
    partition); each chunk is fed as one batch per partition, in `order`, as a consumer polling the
    partitions in turn would.
    """
    def raws() -> Iterator[RawBatch]:
        next_offset: dict[int, int] = {}
        for part, keys, values in split_by_partition(chunks, parts, order):
            first = next_offset.get(part, 0)
            next_offset[part] = first + len(values)
            offsets = np.arange(first, first + len(values), dtype=np.int64)
            yield RawBatch(topic, part, offsets, list(keys), list(values))

    outputs = run_batches(raws(), rt).outputs
    return {"threats": [json.loads(o.value) for o in outputs if o.role == "threats"],
            "dead_lettered": sum(o.role == "deadletter" for o in outputs)}


def key_partitions(settings: dict[str, Any], topic: str, timeout_s: float = 300) -> dict[bytes, int]:
    """Kafka partition of every message key in `topic` (the producer's partitioner decided)."""
    return {m.key() or b"": m.partition() for m in scan_topic(settings, topic, timeout_s)}


def split_by_partition(chunks: Chunks, parts: dict[bytes, int], order: list[int]
                       ) -> Iterator[tuple[int, list[bytes], list[bytes]]]:
    """(partition, keys, values): each chunk as one sub-chunk per Kafka partition, in `order`."""
    for _, keys, values in chunks:
        for p in order:
            sel = [i for i, k in enumerate(keys) if parts.get(k, 0) == p]
            if sel:
                yield p, [keys[i] for i in sel], [values[i] for i in sel]


def order_sensitive_ids(rt: Runtime, make_chunks: Callable[[], Chunks], parts: dict[bytes, int],
                        ref_ids: set[str], topic: str) -> set[str]:
    """Threat ids whose presence changes when only the order in which the partitions' batches
    are fed changes (no kills, no clock): nondeterminism of the engine, not chaos damage."""
    order = sorted(set(parts.values()))
    if len(order) < 2:
        return set()
    run = reference_run(rt, make_chunks(), parts, order[::-1], topic)
    return {t["id"] for t in run["threats"]} ^ ref_ids


def comparability(changed: list[str], threats: list[dict[str, Any]], ref_model: str
                  ) -> list[str]:
    """Reasons the reference is not the same code and model as the runs (empty: comparable)."""
    out = []
    if changed:
        out.append(f"code or model changed while chaos ran ({', '.join(changed[:8])}"
                   f"{' ...' if len(changed) > 8 else ''}): restarted runs and the reference ran "
                   "different code; rerun on a quiet tree before judging detection")
    models = sorted({str(t.get("model_version")) for t in threats} - {ref_model})
    if models:
        out.append(f"threats were scored by model(s) {models}, the reference by {ref_model}: "
                   "threat ids include the model version, so none can match")
    return out


def compare_detection(got: list[dict[str, Any]], ref: list[dict[str, Any]],
                      disturbances: list[tuple[str, int, int]], order_sensitive: set[str],
                      window_ms: int) -> dict[str, Any]:
    """Distinct threat ids vs the reference. Each difference is located relative to the nearest
    disturbance (kill gap or outage), flagged if order-sensitive, and paired with its twin when
    the same device and class was alerted in the same or a neighbouring window, so its cause can
    be judged."""
    got_by = {t["id"]: t for t in got}
    ref_by = {t["id"]: t for t in ref}
    missing = sorted(ref_by.keys() - got_by.keys())
    extra = sorted(got_by.keys() - ref_by.keys())
    diffs = [_locate("missing", ref_by[i], disturbances) for i in missing]
    diffs += [_locate("extra", got_by[i], disturbances) for i in extra]
    moved = _pair_moved(diffs, window_ms)
    for d in diffs:
        d["order_sensitive"] = d["id"] in order_sensitive
    diffs.sort(key=lambda d: (d["window_end"], d["side"]))
    return {
        "threats_reference": len(ref_by),
        "threats_missing_vs_reference": missing,
        "threats_extra_vs_reference": extra,
        "threats_moved": moved,
        "reference_order_sensitive": sorted(order_sensitive),
        "differences_not_order_sensitive": [d["id"] for d in diffs if not d["order_sensitive"]],
        "detection_differences": diffs,
    }


def _pair_moved(diffs: list[dict[str, Any]], window_ms: int) -> list[dict[str, Any]]:
    """Missing/extra pairs of one device and class whose windows start at most one window apart:
    the same detection attributed to another window or firing time (so its id differs)."""
    extras = [d for d in diffs if d["side"] == "extra"]
    pairs = []
    for m in (d for d in diffs if d["side"] == "missing"):
        for x in extras:
            if (x["device_id"], x["threat"]) == (m["device_id"], m["threat"]) and \
                    abs(x["window_start"] - m["window_start"]) <= window_ms and "moved" not in x:
                m["moved"] = x["moved"] = True
                pairs.append({"device_id": m["device_id"], "threat": m["threat"],
                              "reference_window": [m["window_start"], m["window_end"]],
                              "chaos_window": [x["window_start"], x["window_end"]]})
                break
    return pairs


def _locate(side: str, t: dict[str, Any], disturbances: list[tuple[str, int, int]]
            ) -> dict[str, Any]:
    """A differing threat with the disturbance(s) nearest its window ("kill+outage" on a tie)."""
    ws, we = int(t["window_start"]), int(t["window_end"])
    # seconds from each disturbance to the window; 0 = they overlap, < 0 = window before it
    gaps = [(0.0 if ws <= b and a <= we else (ws - b) / 1000 if ws > b else (we - a) / 1000, kind)
            for kind, a, b in disturbances]
    best = min((abs(g) for g, _ in gaps), default=math.inf)
    nearest = [(g, k) for g, k in gaps if abs(g) == best]
    return {"side": side, "id": t["id"], "device_id": t["device_id"], "threat": t["threat"],
            "window_start": ws, "window_end": we, "detectors": t.get("detectors", []),
            "nearest_disturbance": "+".join(sorted({k for _, k in nearest})) or "none",
            "seconds_after_disturbance": round(nearest[0][0], 1) if nearest else None}


def verdict(report: dict[str, Any]) -> bool:
    """Pass: nothing lost, every re-emitted threat kept its id, no run failed on its own."""
    return (report["lost"] == 0 and report["duplicates_with_same_id"] == report["duplicates"]
            and not report["failures"])


def _log_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if LOG_PATTERN.search(ln)]


def _summarise_lines(lines: list[str], limit: int = 25) -> list[str]:
    """Distinct log messages (timestamps and numbers folded) with counts, most frequent first."""
    def shape(ln: str) -> str:
        return re.sub(r"\d+", "N", ln.split(": ", 1)[-1] if ln[:4].isdigit() else ln)[:240]
    counts = Counter(shape(ln) for ln in lines)
    first: dict[str, str] = {}
    for ln in lines:
        first.setdefault(shape(ln), ln[:300])
    return [f"{n}x {first[s]}" for s, n in counts.most_common(limit)]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"(no log: {e})"


def code_fingerprint(root: Path = REPO_ROOT) -> dict[str, str]:
    """sha256 of every source, config and model file the dataflow loads (relative path -> hex)."""
    out = {}
    for pkg in CODE_DIRS:
        for f in sorted((root / pkg).rglob("*")):
            if f.is_file() and f.suffix in CODE_SUFFIXES and "__pycache__" not in f.parts:
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or edited between two fingerprints."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


# --------------------------------------------------------------------------------- output


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def format_table(report: dict[str, Any]) -> str:
    """The headline figures for the terminal."""
    o = report.get("outage") or {}
    rows: list[tuple[str, Any]] = [
        ("events in (incl. malformed)", report["events_in"]),
        ("processed (twin versions)", report["processed"]),
        ("dead-lettered", f"{report['dead_lettered']} (reference {report['dead_lettered_reference']})"),
        ("lost", report["lost"]),
        ("kills (SIGKILL)", report["kills"]),
        ("broker outage", f"{o.get('downtime_s', 0)} s, run exit {o.get('run_exit_code', '-')}"
         + (" (stopped by --until-idle during it)" if o.get("run_stopped_before_input_end") else "")),
        ("threats written / distinct", f"{report['threats_total']} / {report['threats_distinct']}"),
        ("duplicates / same id", f"{report['duplicates']} / {report['duplicates_with_same_id']}"),
        ("re-alerts within cooldown", len(report["realerts_within_cooldown"])),
        ("threats vs reference", f"{report['threats_reference']} reference, "
         f"{len(report['threats_missing_vs_reference'])} missing, "
         f"{len(report['threats_extra_vs_reference'])} extra"),
        ("  same detection, moved window", len(report["threats_moved"])),
        ("  of which not order-sensitive", len(report["differences_not_order_sensitive"])),
        ("reference comparable", "yes" if report["reference_comparable"] else "NO (see warnings)"),
        ("total time", f"{report['timings'].get('total_s', '?')} s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"failure: {f.splitlines()[0]}" for f in report["failures"]]
    lines.append("result: " + ("PASS" if report["ok"] else "FAIL"))
    return "\n".join(lines)
