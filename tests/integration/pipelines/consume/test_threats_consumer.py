"""Real broker: the threats API and `twinguard threats` read what the topic holds, drop re-emitted
duplicates, filter, count an unreadable record instead of hiding it, escape device text in the
table, and `--follow` prints a threat produced after it started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import produce
from tests.support.threats import encoded, threat_event
from twinguard.pipelines.config import Config
from twinguard.pipelines.consume import ThreatFilter, threats

T0 = 1_750_000_000_000


def _fill(cfg: Config) -> None:
    items = [
        threat_event("a" * 24, "therm-001", "brute_force", "high", T0),
        threat_event("b" * 24, "cam-002", "dos", "medium", T0 + 60_000, device_type="ip_camera"),
        threat_event("c" * 24, "therm-003", "exfiltration", "critical", T0 + 120_000,
                     reason="intel: note \x1b[2J\x1b]0;pwned\x07 from the feed"),
        threat_event("a" * 24, "therm-001", "brute_force", "high", T0),  # re-emitted after recovery
    ]
    produce(cfg, cfg.topics.threats, [encoded(ev) for ev in items] + [(b"x", b"{not json")])


def test_api_deduplicates_filters_and_counts_unreadable(unique_topics: Config) -> None:
    cfg = unique_topics
    _fill(cfg)
    reader = threats(cfg)
    got = list(reader)
    assert sorted(ev.id[0] for ev in got) == ["a", "b", "c"]
    assert (reader.stats.records, reader.stats.duplicates, reader.stats.unreadable) == (5, 1, 1)

    high = [ev.id[0] for ev in threats(cfg, match=ThreatFilter(min_severity="high"))]
    assert sorted(high) == ["a", "c"]
    assert [ev.device_id for ev in threats(cfg, match=ThreatFilter(threat="dos"))] == ["cam-002"]
    later = threats(cfg, match=ThreatFilter(device_id="therm-003", since_ms=T0 + 1))
    assert [ev.threat for ev in later] == ["exfiltration"]


def test_follow_yields_a_threat_produced_later_then_stops(unique_topics: Config) -> None:
    cfg = unique_topics
    _fill(cfg)
    stop = threading.Event()
    got: list[str] = []

    def consume() -> None:
        for ev in threats(cfg, follow=True, stop=stop):
            got.append(ev.id)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:  # noqa: PLR2004 - the three filled
        time.sleep(0.05)
    produce(cfg, cfg.topics.threats, [encoded(threat_event("d" * 24, "therm-004"))])
    while "d" * 24 not in got and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(10)
    assert sorted(got) == ["a" * 24, "b" * 24, "c" * 24, "d" * 24] and not t.is_alive()


def test_cli_table_json_and_follow(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    _fill(cfg)
    conf = str(write_config(cfg, tmp_path / "twinguard.toml"))
    out = twinguard("--config", conf, "threats")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 + 3 and "\x1b" not in out.stdout and "\\x1b[2J" in out.stdout
    assert "3 threats shown" in out.stderr and "1 duplicates" in out.stderr
    assert "1 unreadable" in out.stderr

    out = twinguard("--config", conf, "threats", "--json", "--severity", "critical")
    assert [json.loads(line)["id"] for line in out.stdout.splitlines()] == ["c" * 24]
    bad = twinguard("--config", conf, "threats", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since 'yesterday-ish'" in bad.stderr

    follow = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config", conf,
                               "threats", "--follow", "--json", "--device", "therm-009"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        produce(cfg, cfg.topics.threats, [encoded(threat_event("e" * 24, "therm-009"))])
        assert follow.stdout is not None
        line = follow.stdout.readline()  # blocks until printed; the test timeout bounds it
        assert json.loads(line)["id"] == "e" * 24
    finally:
        follow.terminate()
        follow.wait(10)
