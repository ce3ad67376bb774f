"""Real broker, real dataflow: after `twinguard run` over a small simulated fleet with attacks, the
threats reader returns every threat in the topic once, and the forensic bundle of a model-scored
threat holds that device's raw telemetry from the window the threat's source offsets name."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import read_outputs
from twinguard.pipelines.config import Config
from twinguard.pipelines.consume import threats
from twinguard.pipelines.sim.simulate import produce_simulation


def test_bundle_of_a_detected_threat_holds_its_windows_telemetry(unique_topics: Config,
                                                                  tmp_path: Path) -> None:
    cfg = unique_topics
    produce_simulation(cfg, devices=30, duration_s=30, rate=None, seed=5,
                       labels_path=tmp_path / "labels.jsonl")
    conf = str(write_config(cfg, tmp_path / "twinguard.toml"))
    ran = twinguard("--config", conf, "run", "--until-idle", "4", "--insecure-dev-key")
    assert ran.returncode == 0, ran.stderr[-3000:]

    in_topic, _, _ = read_outputs(cfg)
    found = list(threats(cfg))
    assert in_topic and sorted(ev.id for ev in found) == sorted({str(t["id"]) for t in in_topic})
    scored = [ev for ev in found if ev.source is not None]
    assert scored
    ev = scored[0]
    out = tmp_path / "bundle"
    done = twinguard("--config", conf, "forensics", ev.id, "--out", str(out))
    assert done.returncode == 0, done.stderr

    raw = [json.loads(line) for line in (out / "source_messages.jsonl").read_text().splitlines()]
    assert raw and ev.source is not None
    assert {m["value"]["device_id"] for m in raw} == {ev.device_id}
    assert all(ev.source.first_offset <= m["offset"] <= ev.source.last_offset for m in raw)
    assert {m["partition"] for m in raw} == {ev.source.partition}
    stamps = [m["value"]["ts"] for m in raw]
    assert ev.window_start <= min(stamps) and max(stamps) <= ev.window_end, (stamps, ev)
    twin = json.loads((out / "twin.json").read_text())["twin"]
    assert twin["device_id"] == ev.device_id
    actions = [json.loads(line) for line in (out / "actions.jsonl").read_text().splitlines()]
    assert sorted(a["action"] for a in actions) == sorted(ev.actions)
