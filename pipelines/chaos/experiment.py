"""The chaos experiment: start a broker and topics, produce live input, kill and restart the
dataflow, stop the broker."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.chaos.audit import (
    audit_topics,
    comparability,
    compare_detection,
    key_partitions,
    order_sensitive_ids,
    reference_run,
    verdict,
)
from twinguard.pipelines.chaos.model import (
    FINISH_TIMEOUT_S,
    KILL_DELAY_S,
    LEAD_S,
    OUTPUT_TIMEOUT_S,
    Broker,
    ChaosConfig,
    ChaosError,
    Outage,
    RunRecord,
    _now_ms,
    _secs,
)
from twinguard.pipelines.chaos.processes import (
    DataflowRun,
    OutputWatch,
    _log_lines,
    _summarise_lines,
    _tail,
    changed_files,
    code_fingerprint,
    restart_broker,
    write_config_file,
)
from twinguard.pipelines.chaos.workload import PacedProducer, input_chunks, malformed_schedule, plan_fleet
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.kafka import local as kafka_local
from twinguard.pipelines.sim.fleet import FleetSimulator
from twinguard.pipelines.workdir import in_work_dir

log = logging.getLogger(__name__)


def run_chaos(cfg: Config, cc: ChaosConfig) -> dict[str, Any]:
    """Run the whole experiment and return the report (see module docstring)."""

    def experiment(work: Path) -> dict[str, Any]:
        with _broker(cc, work) as broker:
            return _with_topics(cfg, cc, broker, work)

    return in_work_dir("chaos", cc.keep_dir, experiment)


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
        keys = KeyRing.from_config(self.cfg.integrity.key_file, self.cfg.integrity.master_key_env,
                                   allow_dev_key=True)  # its runs get --insecure-dev-key
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
        cmd = [sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(self.config_file), "run",
               "--recovery-dir", str(self.work / "recovery"),
               "--snapshot-interval", str(self.cc.snapshot_interval_s),
               "--until-idle", str(self.cc.until_idle_s), "--insecure-dev-key"]
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
