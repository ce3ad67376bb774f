"""Real broker, real `twinguard run`: its /metrics, scraped while it runs, agrees with the topics
(messages in = produced, threats/actions/dead letters = what the output topics hold, lag drains to
zero) and passes `promtool check metrics`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.support.cli import write_config
from tests.support.kafka import produce
from tests.support.metrics import by_label, parse, run_promtool, scrape, total, wait_for
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.admin import end_offsets
from twinguard.pipelines.kafka.local import free_port
from twinguard.pipelines.sim.simulate import produce_simulation

DEVICES = 40
GARBAGE = [(b"bad", b"{oops"), (b"bad", b""), (b"bad", b'{"device_id":"bad","type":"toaster"}')]


def test_scraped_metrics_match_the_topics(unique_topics: Config, tmp_path: Path) -> None:
    cfg, settings = unique_topics, unique_topics.kafka.client_settings()
    produce_simulation(cfg, devices=DEVICES, duration_s=30, rate=None, seed=21,
                       labels_path=tmp_path / "labels.jsonl", activity=True)
    produce(cfg, cfg.topics.telemetry, GARBAGE)
    produced = {t: sum(end_offsets(settings, t).values())
                for t in (cfg.topics.telemetry, cfg.topics.activity)}
    port = free_port()
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    config_file.write_text(config_file.read_text() + f"[metrics]\nport = {port}\n")
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config",
                            str(config_file), "run", "--until-idle", "30", "--insecure-dev-key"],
                           stdout=log, stderr=subprocess.STDOUT)
    url, state = f"http://127.0.0.1:{port}/metrics", {"text": "", "missing": ""}

    def caught_up() -> str:
        assert run.poll() is None, state["missing"] + (tmp_path / "run.log").read_text()[-3000:]
        try:
            state["text"] = scrape(url)
        except OSError as e:
            return f"no endpoint yet ({e})"
        got = parse(state["text"])
        seen = {t: total(got, "twinguard_messages_in_total", topic=t) for t in produced}
        lag = total(got, "twinguard_consumer_lag_messages")
        lag_reported = sum(1 for name, _ in got if name == "twinguard_consumer_lag_messages")
        written = {r: len(read_topic(settings, getattr(cfg.topics, r)))
                   for r in ("threats", "deadletter")}
        counted = {"threats": total(got, "twinguard_threats_total"),
                   "deadletter": total(got, "twinguard_dead_letters_total")}
        # a lag gauge per partition of each input: telemetry, activity and the action results
        done = (seen == produced and lag_reported == 3 * cfg.topics.partitions and lag == 0
                and written == counted and written["threats"] > 0)
        state["missing"] = "" if done else (f"in {seen} of {produced}, lag {lag} on {lag_reported} "
                                            f"partitions, {counted} vs "
                                            f"topics {written}")
        return state["missing"]

    try:
        wait_for(caught_up, timeout_s=180)
    finally:
        run.kill()
        run.wait()
        log.close()
    text = state["text"]
    (tmp_path / "metrics.txt").write_text(text)
    got = parse(text)

    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    actions = [json.loads(v) for _, v in read_topic(settings, cfg.topics.actions)]
    assert by_label(got, "twinguard_threats_total", ["threat", "severity"]) == Counter(
        (t["threat"], t["severity"]) for t in threats)
    assert by_label(got, "twinguard_actions_total", ["action", "tier", "mode"]) == Counter(
        (a["action"], a["tier"], "dry_run" if a["dry_run"] else "live") for a in actions)
    assert total(got, "twinguard_dead_letters_total", stage="decode") >= len(GARBAGE)
    assert total(got, "twinguard_detection_latency_seconds_count") == len(threats)
    lags = by_label(got, "twinguard_consumer_lag_messages", ["topic", "partition"])
    assert not lags  # every partition reported, all at zero (zeros are left out)
    partitions = {(dict(k[1])["topic"], dict(k[1])["partition"]) for k in got
                  if k[0] == "twinguard_consumer_lag_messages"}
    assert len(partitions) == 3 * cfg.topics.partitions  # telemetry, activity, action results
    assert total(got, "twinguard_twins_tracked") == DEVICES
    model = [dict(k[1]) for k in got if k[0] == "twinguard_model_info"]
    assert len(model) == 1 and model[0]["version"] and len(model[0]["sha256"]) == 64
    assert any(k[0] == "twinguard_build_info" for k in got)
    assert total(got, "twinguard_batch_processing_seconds_count", step="decode") > 0
    # no device id ever becomes a label value
    devices = {d for d, _ in (k for k in read_topic(settings, cfg.topics.twins)) if d}
    labels = {v for _, lbl in got for _, v in lbl}
    assert not {d.decode() for d in devices} & labels

    lint = run_promtool("check", "metrics", stdin=text)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
