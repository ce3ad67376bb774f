"""A fuzz run: produce every kind of hostile input to fresh topics, run `twinguard run` over it
(restarted while it crashes, as an orchestrator would), and account for every message per kind.

Mixed first (all kinds in one run, as an attacker would send them); when that fails, `auto` runs each
kind alone so the report can say which kinds crash or lose messages."""

from __future__ import annotations

import logging
import os
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.chaos.model import RunRecord, _now_ms
from twinguard.pipelines.chaos.processes import DataflowRun, write_config_file
from twinguard.pipelines.config import Config
from twinguard.pipelines.fuzz.audit import account, log_problems, read_outcome
from twinguard.pipelines.fuzz.catalogue import Context, build
from twinguard.pipelines.fuzz.model import FuzzConfig, Kind
from twinguard.pipelines.fuzz.produce import produce
from twinguard.pipelines.kafka import admin as kafka_admin
from twinguard.pipelines.workdir import in_work_dir
from twinguard.schemas.device_types import load_device_types

log = logging.getLogger(__name__)
INPUT_ROLES = ("telemetry", "activity", "intel")


def run_fuzz(cfg: Config, fc: FuzzConfig) -> dict[str, Any]:
    """Build the catalogue, run the phases the mode asks for, and return the report."""

    def experiment(work: Path) -> dict[str, Any]:
        with _fleet_secret(cfg):
            keys = KeyRing.from_config(cfg.integrity.key_file, cfg.integrity.master_key_env,
                                       allow_dev_key=False)
            ctx = Context(keys, load_device_types(), _now_ms(), random.Random(fc.seed))
            kinds = build(ctx, fc.size, fc.seed)
            log.info("fuzz: %d kinds, %d messages; logs in %s", len(kinds),
                     sum(len(k.messages) for k in kinds), work)
            phases = []
            if fc.mode in ("auto", "mixed"):
                phases.append(Phase(cfg, fc, work, "mixed", kinds).run())
            if fc.mode == "isolated" or (fc.mode == "auto" and not phases[0]["ok"]):
                phases += [Phase(cfg, fc, work, k.name, [k]).run() for k in kinds]
        return summarise(phases, kinds, fc)

    return in_work_dir("fuzz", fc.keep_dir, experiment)


@contextmanager
def _fleet_secret(cfg: Config) -> Iterator[None]:
    """A fresh fleet master secret for this run when none is configured (never the public
    development key: the dataflow runs as in production); restored afterwards."""
    name = cfg.integrity.master_key_env
    if cfg.integrity.key_file or os.environ.get(name):
        yield
        return
    os.environ[name] = secrets.token_hex(32)
    try:
        yield
    finally:
        os.environ.pop(name, None)


class Phase:
    """One set of fresh topics, some kinds' input, the runs over it, and its accounting."""

    def __init__(self, cfg: Config, fc: FuzzConfig, work: Path, name: str, kinds: list[Kind]
                 ) -> None:
        suffix = uuid.uuid4().hex[:10]
        topics: dict[str, Any] = {r: f"{n}.fuzz-{suffix}" for r, n in cfg.topics.all().items()}
        self.cfg = cfg.replace(topics={**topics, "partitions": fc.partitions})
        self.fc, self.name, self.kinds = fc, name, kinds
        self.dir = work / name
        self.runs: list[RunRecord] = []

    def run(self) -> dict[str, Any]:
        """Create the topics, produce, run until the input is done or the run keeps crashing."""
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = self.cfg.kafka.client_settings()
        kafka_admin.create_topics(settings, kafka_admin.topic_specs(self.cfg))
        try:
            t0 = time.monotonic()
            topics = {r: getattr(self.cfg.topics, r) for r in INPUT_ROLES}
            produced = produce(settings, topics, self.kinds)
            produce_s = time.monotonic() - t0
            self._drive()
            logs = "\n".join(r.log_path.read_text(errors="replace") for r in self.runs)
            outcome = read_outcome(self.cfg, logs)
            kinds = account(self.kinds, produced, outcome)
        finally:
            try:
                kafka_admin.delete_topics(settings, self.cfg.topics.all().values())
            except kafka_admin.KafkaAdminError as e:  # never mask the real outcome
                log.warning("fuzz: could not delete the phase's topics: %s", e)
        crashes = [self._crash(r) for r in self.runs if r.exit_code != 0]
        problems = log_problems(logs)
        failed = sorted(n for n, k in kinds.items() if k.get("lost") or k.get("problems"))
        ok = not crashes and not problems and not failed
        log.info("fuzz: phase %s: %d messages, %d run(s), %d crash(es), %s", self.name,
                 produced.total, len(self.runs), len(crashes), "ok" if ok else "FAILED")
        return {"name": self.name, "ok": ok, "inputs": produced.total, "kinds": kinds,
                "crashes": crashes, "problems": problems, "failed_kinds": failed,
                "runs": [r.summary() for r in self.runs], "produce_s": round(produce_s, 1)}

    def _drive(self) -> None:
        """`twinguard run --until-idle` with recovery, started again after each crash."""
        config = write_config_file(self.cfg, self.dir / "twinguard.toml")
        for attempt in range(self.fc.max_restarts + 1):
            rec = RunRecord(attempt, "run" if attempt == 0 else "restart",
                            self.dir / f"run-{attempt:02d}.log", _now_ms())
            self.runs.append(rec)
            run = DataflowRun(rec, [
                sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config), "run",
                "--recovery-dir", str(self.dir / "recovery"), "--until-idle",
                str(self.fc.until_idle_s)])
            if not run.wait(self.fc.run_timeout_s):
                run.kill()
                log.warning("fuzz: %s run %d did not finish in %.0f s (killed)", self.name,
                            attempt, self.fc.run_timeout_s)
            if rec.exit_code == 0:
                return
            log.warning("fuzz: %s run %d crashed: %s", self.name, attempt, self._crash(rec)["error"])

    @staticmethod
    def _crash(rec: RunRecord) -> dict[str, Any]:
        """Exit code and the error line a crashed run printed."""
        lines = rec.log_path.read_text(errors="replace").splitlines()
        error = next((ln for ln in lines if ln.startswith("twinguard run: error:")),
                     next((ln for ln in reversed(lines) if ln.strip()), "(no output)"))
        return {"run": rec.index, "exit_code": rec.exit_code, "killed": rec.killed,
                "error": error[:500], "log": str(rec.log_path)}


def summarise(phases: list[dict[str, Any]], kinds: list[Kind], fc: FuzzConfig) -> dict[str, Any]:
    """The verdict: per kind from the mixed phase if it passed, else from the kind's own phase."""
    mixed = next((p for p in phases if p["name"] == "mixed"), None)
    alone = {p["name"]: p for p in phases if p["name"] != "mixed"}
    per_kind: dict[str, dict[str, Any]] = {}
    for k in kinds:
        p = alone.get(k.name) or mixed
        assert p is not None  # noqa: S101 - every mode runs at least one phase per kind
        row = dict(p["kinds"][k.name])
        row["crashes"] = [c["error"] for c in p["crashes"]] if p is alone.get(k.name) else []
        row["ok"] = not row["lost"] and not row["problems"] and not row["crashes"]
        per_kind[k.name] = row
    reasons: Counter[str] = Counter()
    for row in per_kind.values():
        reasons.update(row["dead_letter_reasons"])
    crashes = [c for p in phases for c in p["crashes"]]
    runs = [r for p in phases for r in p["runs"]]
    rss = [r["peak_rss_mb"] for r in runs if r.get("peak_rss_mb") is not None]
    failed = sorted(n for n, r in per_kind.items() if not r["ok"])
    return {
        "ok": all(p["ok"] for p in phases),
        "inputs_tried": sum(len(k.messages) for k in kinds),
        "crashes": len(crashes),
        "restarts": sum(r["role"] == "restart" for r in runs),
        "lost": sum(max(0, r["lost"]) for r in per_kind.values()),
        "dead_lettered": sum(r["dead_lettered"] + r["intel_dead_lettered"] for r in per_kind.values()),
        "dead_letter_reasons": dict(reasons.most_common()),
        "peak_rss_mb": max(rss, default=None),
        "failed_kinds": failed,
        "kinds": per_kind,
        "crash_errors": sorted({c["error"] for c in crashes}),
        "problems": [f"{p['name']}: {x}" for p in phases for x in p["problems"]],
        "phases": phases,
        "settings": {"size": fc.size, "seed": fc.seed, "partitions": fc.partitions,
                     "mode": fc.mode, "until_idle_s": fc.until_idle_s,
                     "max_restarts": fc.max_restarts},
    }
