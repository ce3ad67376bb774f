"""Real broker, real CLI: `twinguard risk` ranks the attacked and the intel-exposed devices first after
`twinguard run` over simulated telemetry with attacks; `twinguard intel` publishes and withdraws."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.intel import intel_messages
from tests.support.kafka import produce
from twinguard.operators.intel.reader import start_intel_reader
from twinguard.operators.intel.table import IntelTable
from twinguard.pipelines.cli import DEMO_INTEL
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.risk_report import rank, read_fleet
from twinguard.pipelines.sim.labels import read_labels
from twinguard.pipelines.sim.simulate import produce_simulation


def test_risk_ranks_attacked_and_exposed_devices_first(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    produce(cfg, cfg.topics.intel, intel_messages(int(time.time() * 1000)))
    labels_path = tmp_path / "labels.jsonl"
    produce_simulation(cfg, devices=150, duration_s=45, rate=None, seed=5, labels_path=labels_path)
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    result = twinguard("--config", str(config_file), "run", "--until-idle", "6",
                       "--insecure-dev-key")
    assert result.returncode == 0, result.stderr[-3000:]

    fleet = read_fleet(cfg, progress=False)
    ranking = rank(fleet.twins.values())
    assert len(ranking) == 150 and fleet.unreadable == 0
    labels = read_labels(labels_path)
    attacked = {lb.device_id for lb in labels}
    exfil = {lb.device_id for lb in labels if lb.threat == "exfiltration"}
    vulnerable = {r.device_id for r in ranking if any("vulnerable" in why for why in r.reasons)}
    plain = [r for r in ranking if r.device_id not in attacked | vulnerable]
    position = {r.device_id: r.rank for r in ranking}

    assert ranking[0].device_id in attacked
    assert max(position[d] for d in attacked | vulnerable) < min(r.rank for r in plain)
    assert exfil and all(any(w.startswith("traffic with intel-listed")
                             for w in fleet.twins[d].risk_reasons) for d in exfil)
    assert {fleet.twins[d].device_type for d in vulnerable} <= {"ip_camera", "pump_plc", "thermostat"}
    assert all(r.risk < 20 for r in plain)
    reasons = [why for r in ranking for why in r.reasons]
    assert not any("4.3.0 vulnerable" in w or "7.0.3 vulnerable" in w for w in reasons)

    # the CLI prints the same ranking: JSON for machines, a table (optionally one type) for people
    out = twinguard("--config", str(config_file), "risk", "--json", "--top", "0")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [r["device_id"] for r in doc["ranking"]] == [r.device_id for r in ranking]
    out = twinguard("--config", str(config_file), "risk", "--top", "5", "--type", "ip_camera")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()[2:7]
    assert [line.split()[2] for line in rows] == [r.device_id for r in ranking
                                                  if r.device_type == "ip_camera"][:5]
    bad = twinguard("--config", str(config_file), "risk", "--type", "toaster")
    assert bad.returncode == 2 and "no twins of type 'toaster'" in bad.stderr


def test_intel_cli_publishes_a_feed_and_withdraws_an_indicator(unique_topics: Config,
                                                               tmp_path: Path) -> None:
    cfg = unique_topics
    config_file = str(write_config(cfg, tmp_path / "twinguard.toml"))
    out = twinguard("--config", config_file, "intel", "publish", str(DEMO_INTEL))
    assert out.returncode == 0 and "6 intel entries published" in out.stdout, out.stderr
    out = twinguard("--config", config_file, "intel", "withdraw", "203.0.113.7/24")
    assert out.returncode == 0 and "1 intel entries withdrawn" in out.stdout, out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"indicator": "10.0.0.1", "kind": "url"}\n')
    out = twinguard("--config", config_file, "intel", "publish", str(bad))
    assert out.returncode == 2 and "bad.jsonl:1: schema" in out.stderr

    table = IntelTable()
    reader = start_intel_reader(cfg.kafka.client_settings(), cfg.topics.intel, cfg.topics.deadletter,
                                table, catch_up_timeout_s=60)
    reader.stop()
    now_ms = int(time.time() * 1000)
    assert reader.rejected == 0 and len(table) == 5
    assert table.current.lookup_ip("203.0.113.9", now_ms) is None
    assert table.current.lookup_ip("198.51.100.9", now_ms) is not None
