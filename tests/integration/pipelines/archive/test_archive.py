"""Real broker, real CLI: `run --emit-windows` writes closed windows; `twinguard archive` stores
windows, threats and feedback as Parquet, survives a SIGKILL without losing or repeating a row, and
dead-letters what it cannot store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import produce
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.archive.store import Manifest, read_kind
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation


def _feedback(threats: list[dict[str, object]]) -> list[tuple[bytes, bytes]]:
    out = []
    for i, t in enumerate(threats[:6]):
        verdict = "true_positive" if i % 2 == 0 else "false_positive"
        doc = {"threat_id": t["id"], "verdict": verdict, "analyst": "soc.test", "ts": t["window_end"],
               "scope": "device"}  # a field a newer producer adds: tolerated
        out.append((str(t["id"]).encode(), json.dumps(doc).encode()))
    return out


def _start_archive(config: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(config),
                             "archive", "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"), env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_archive_resumes_after_a_kill_without_losing_or_repeating_rows(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    produce_simulation(cfg, devices=60, duration_s=60, rate=None, seed=3,
                       labels_path=tmp_path / "labels.jsonl")
    config = write_config(cfg, tmp_path / "twinguard.toml")
    with config.open("a") as f:
        f.write("[archive]\nflush_rows = 40\nflush_s = 0.2\n")
    ran = twinguard("--config", str(config), "run", "--until-idle", "6", "--insecure-dev-key",
                    "--emit-windows")
    assert ran.returncode == 0, ran.stderr[-3000:]
    settings = cfg.kafka.client_settings()
    windows = [json.loads(v) for _, v in read_topic(settings, cfg.topics.windows)]
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    assert len(windows) > 200 and threats
    assert {w["device_id"] for w in windows} >= {t["device_id"] for t in threats}
    feedback = _feedback(threats)
    bad = [(b"x", b"{not json"), (b"y", b'{"threat_id": "t", "verdict": "maybe", "analyst": "a", '
                                          b'"ts": 1}')]
    produce(cfg, cfg.topics.feedback, feedback[:3] + bad)
    produce(cfg, cfg.topics.windows, [(b"d", b'{"device_id": "d"}')])

    out, log = tmp_path / "archive", tmp_path / "archive.log"
    proc = _start_archive(config, out, log)
    deadline = time.monotonic() + 120
    while len(Manifest.read(out / "manifest.json").files) < 3:  # killed while it is writing
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    produce(cfg, cfg.topics.feedback, feedback[3:])  # more arrives while it is down

    again = twinguard("--config", str(config), "archive", "--out", str(out), "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "windows" in again.stderr and "dead-lettered" in again.stderr  # progress on stderr

    rows = read_kind(out, "windows")
    assert rows.height == len(windows)  # every window once: none lost, none twice
    assert rows.select(["_partition", "_offset"]).is_duplicated().sum() == 0
    assert sorted(rows["window_end"].to_list()) == sorted(w["window_end"] for w in windows)
    th = read_kind(out, "threats")
    assert sorted(th["id"].to_list()) == sorted(str(t["id"]) for t in threats)
    fb = read_kind(out, "feedback")
    assert sorted(fb["threat_id"].to_list()) == sorted(k.decode() for k, _ in feedback)
    dead = [json.loads(v) for _, v in read_topic(settings, cfg.topics.deadletter)]
    reasons = {d["topic"]: d["reason"] for d in dead if d["stage"] == "archive"}
    assert set(reasons) == {cfg.topics.feedback, cfg.topics.windows}
    assert "schema" in reasons[cfg.topics.windows]
    assert len({(d["topic"], d["offset"]) for d in dead if d["stage"] == "archive"}) == 3
    parts = {p.parent.name for p in out.glob("kind=windows/date=*/*.parquet")}
    assert parts and all(p.startswith("date=20") for p in parts)
