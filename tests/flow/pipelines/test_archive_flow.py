"""The archive's inputs from the engine and the retraining command end to end (no broker: the
simulator through the dataflow's own steps; the Kafka leg is tests/integration/pipelines/archive)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import twinguard
from twinguard.benchmarks.adaptation import VARIANT, archive_run, feedback_for, fleet
from twinguard.operators.detect.scoring import Scorer
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import run_fleet
from twinguard.pipelines.sim.fleet import ATTACK_CLASSES, SimConfig


def test_windows_reach_the_archive_topic_only_when_switched_on(config: Config) -> None:
    sim = SimConfig(devices=30, duration_s=40, seed=4, attack_fraction=0.0, start_ms=1_760_000_000_000)
    off, _ = run_fleet(Runtime.from_config(config), sim, "off")
    assert not [o for o in off.outputs if o.role == "windows"]
    on, _ = run_fleet(Runtime.from_config(config.replace(archive={"emit_windows": True})), sim, "on")
    records = [json.loads(o.value) for o in on.outputs if o.role == "windows"]
    assert len(records) == len(on.windows.device_ids)  # every final window, once
    assert {r["device_id"] for r in records} == set(on.windows.device_ids)
    first = records[0]
    assert first["model_version"] == Runtime.from_config(config).engine.scorer.version
    assert first["device_type"] and 0.0 <= first["risk"] <= 100.0 and first["decided"] == "normal"


def test_train_from_archive_writes_a_better_challenger_and_says_so(config: Config,
                                                                  tmp_path: Path) -> None:
    cfg = config.replace(archive={"emit_windows": True})
    past, fl = run_fleet(Runtime.from_config(cfg), fleet(1, 100, 120.0, (*ATTACK_CLASSES, VARIANT,
                                                                          VARIANT, VARIANT)), "past")
    counts = archive_run(tmp_path / "archive", past, feedback_for(past, fl.labels))
    assert counts["windows"] > 1000 and counts["feedback"] == counts["threats"] > 0

    out = tmp_path / "model"
    done = twinguard("train", "--from-archive", str(tmp_path / "archive"), "--rounds", "10",
                     "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "champion F1" in done.stdout and "twinguard model promote" in done.stdout
    model = Scorer.load(out)  # the usual verified directory
    assert model.metadata is not None and model.metadata["data"]["source"] == "archive"
    assert model.metadata["holdout"]["split"] == "time"

    empty = twinguard("train", "--from-archive", str(tmp_path / "nothing"), "--out", str(out))
    assert empty.returncode == 2 and "is not an archive" in empty.stderr
