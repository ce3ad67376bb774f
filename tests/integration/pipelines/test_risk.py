"""Real broker: the intel topic drives the intel table; `twinguard risk` ranks the attacked and the
exposed devices first after `twinguard run` over simulated telemetry with attacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.pipelines.test_end_to_end import twinguard, write_config
from twinguard.operators.intel.reader import start_intel_reader
from twinguard.operators.intel.table import IntelTable
from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.pipelines.cli import DEMO_INTEL
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.risk_report import rank, read_fleet
from twinguard.pipelines.sim.labels import read_labels
from twinguard.pipelines.sim.simulate import produce_simulation

HOUR_MS = 3_600_000


def intel_messages(now_ms: int) -> list[tuple[bytes, bytes]]:
    """The demo feed, a malformed message, a withdrawn (tombstoned) and an expired indicator."""
    feed = [line for line in DEMO_INTEL.read_bytes().splitlines() if line.startswith(b"{")]
    msgs = [(json.loads(line)["indicator"].encode(), line) for line in feed]
    withdrawn = b'{"indicator": "thermostat:4.3.0", "kind": "firmware", "severity": "critical"}'
    expired = (b'{"indicator": "smart_meter:7.0.3", "kind": "firmware", "severity": "critical", '
               b'"expires_at": ' + str(now_ms - HOUR_MS).encode() + b"}")
    return [*msgs, (b"thermostat:4.3.0", withdrawn), (b"oops", b"{not intel"),
            (b"smart_meter:7.0.3", expired), (b"thermostat:4.3.0", b"")]


def produce(cfg: Config, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, topic, items, errors.append)
    assert p.flush(30) == 0 and not errors, errors


def wait_for(condition: object, what: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_intel_reader_applies_entries_tombstones_and_dead_letters_bad_ones(unique_topics: Config
                                                                            ) -> None:
    cfg = unique_topics
    now_ms = int(time.time() * 1000)
    produce(cfg, cfg.topics.intel, intel_messages(now_ms))
    table = IntelTable()
    reader = start_intel_reader(cfg.kafka.client_settings(), cfg.topics.intel, cfg.topics.deadletter,
                                table, catch_up_timeout_s=60)
    try:
        assert reader.caught_up.is_set() and reader.rejected == 1
        idx = table.current
        assert idx.lookup_ip("203.0.113.9", now_ms).severity == "critical"  # type: ignore[union-attr]
        assert idx.lookup_firmware("ip_camera", "5.51.2", now_ms) is not None
        assert idx.lookup_firmware("thermostat", "4.3.0", now_ms) is None  # tombstoned
        assert idx.lookup_firmware("smart_meter", "7.0.3", now_ms) is None  # expired
        # a later update reaches the running table
        produce(cfg, cfg.topics.intel, [(b"10.9.9.9", b'{"indicator": "10.9.9.9", "kind": "ip"}')])
        wait_for(lambda: table.current.lookup_ip("10.9.9.9", now_ms) is not None, "a new entry")
    finally:
        reader.stop()
        reader.join(10)
    dead = [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.deadletter)]
    assert [(d["stage"], d["key"], d["topic"]) for d in dead] == [("intel", "oops", cfg.topics.intel)]
    assert dead[0]["reason"].startswith("malformed JSON")


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
