"""Real broker, real CLI: `twinguard forensics` bundles one threat: its record, the twin version it
produced, its features, the device's raw messages in its source range (not the other devices' ones
interleaved there), the shipped model's metadata and only this threat's actions, plus a README; an
unknown id and a used output directory fail with one line saying what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from tests.support.cli import twinguard, write_config
from tests.support.kafka import produce
from tests.support.threats import encoded, encoded_twin, threat_event, twin_state
from twinguard.operators.detect.rule_threats import RULES_VERSION
from twinguard.operators.detect.scoring import META_FILE, default_model_dir
from twinguard.operators.io.kafka import producer
from twinguard.pipelines.config import Config
from twinguard.schemas.messages import Action, LastThreat, SourceRange

T0 = 1_750_000_000_000
TID = "1" * 24


def _telemetry(cfg: Config) -> list[int]:
    """Eight messages to telemetry partition 0, the device's and another's interleaved; their offsets."""
    offsets: list[int] = []
    p = producer(cfg.kafka.client_settings())
    for i in range(8):
        device = "therm-001" if i % 2 == 0 else "therm-777"
        doc = {"device_id": device, "type": "thermostat", "ts": T0 - 9_000 + i * 1000, "seq": i,
               "signals": {"temp": 21.0}, "auth": {"failures": 10}}
        p.produce(cfg.topics.telemetry, json.dumps(doc).encode(), device.encode(), partition=0,
                  on_delivery=lambda err, m: offsets.append(-1 if err else m.offset()))
    assert p.flush(30) == 0
    return sorted(offsets)


def _action(aid: str, threat_id: str, action: str) -> tuple[bytes, bytes]:
    a = Action(id=aid, threat_id=threat_id, device_id="therm-001", action=action,
               target="therm-001", tier="auto", dry_run=True, reason="brute_force", issued_at=T0)
    return b"therm-001", msgspec.json.encode(a)


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def test_bundle_holds_the_threats_evidence(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    offsets = _telemetry(cfg)
    model = _read(default_model_dir() / META_FILE)["version"]  # the shipped model's
    threat = threat_event(TID, "therm-001", detected_at=T0, source=SourceRange(0, offsets[0],
                                                                                 offsets[6]))
    threat = msgspec.structs.replace(threat, model_version=model)
    produce(cfg, cfg.topics.threats, [encoded(threat_event("2" * 24, "therm-001")), encoded(threat)])
    last = LastThreat(TID, "brute_force", "high", T0)
    produce(cfg, cfg.topics.twins, [
        encoded_twin(twin_state("therm-001", updated_at=T0 - 5000)),
        encoded_twin(twin_state("therm-777", updated_at=T0)),
        encoded_twin(twin_state("therm-001", "thermostat", "under_attack", 40.0, updated_at=T0 + 10,
                                last_threat=last)),
        encoded_twin(twin_state("therm-001", updated_at=T0 + 60_000)),
    ])
    produce(cfg, cfg.topics.actions, [_action("a1", TID, "block_source"),
                                      _action("a2", "2" * 24, "notify"),
                                      _action("a3", TID, "quarantine")])
    conf = str(write_config(cfg, tmp_path / "twinguard.toml"))
    out = tmp_path / "bundle"

    done = twinguard("--config", conf, "forensics", TID, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "4 source messages, 2 actions" in done.stdout and "not found" not in done.stdout

    assert _read(out / "threat.json")["id"] == TID
    twin = _read(out / "twin.json")
    assert twin["twin"]["status"] == "under_attack" and "last_threat.id matches" in twin["chosen"]
    assert len((out / "twin_history.jsonl").read_text().splitlines()) == 3  # therm-001's only
    assert _read(out / "features.json")["features"][0]["feature"] == "auth_failures_sum"
    raw = [json.loads(line) for line in (out / "source_messages.jsonl").read_text().splitlines()]
    assert [m["offset"] for m in raw] == offsets[0:7:2]
    assert {m["value"]["device_id"] for m in raw} == {"therm-001"}
    actions = [json.loads(line) for line in (out / "actions.jsonl").read_text().splitlines()]
    assert sorted(a["id"] for a in actions) == ["a1", "a3"]
    assert _read(out / "model.json")["version"] == model
    readme = (out / "README.md").read_text()
    assert f"threat {TID}" in readme and "Not found" not in readme

    again = twinguard("--config", conf, "forensics", TID, "--out", str(out))
    assert again.returncode == 2 and "is not empty: pass a new --out" in again.stderr
    unknown = twinguard("--config", conf, "forensics", "f" * 24, "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "not found in" in unknown.stderr
    assert "`twinguard threats`" in unknown.stderr


def test_a_rule_threat_bundles_the_activity_in_its_window(unique_topics: Config,
                                                          tmp_path: Path) -> None:
    cfg = unique_topics
    tid = "3" * 24
    insider = msgspec.structs.replace(
        threat_event(tid, "pump-001", "insider", "high", T0), user="op.0005",
        model_version=RULES_VERSION)
    produce(cfg, cfg.topics.threats, [encoded(insider)])
    window = (insider.window_start, insider.window_end)

    def command(ts: int | str, device: str = "pump-001") -> tuple[bytes, bytes]:
        doc = {"device_id": device, "ts": ts, "user": "op.0005", "action": "set"}
        return device.encode(), json.dumps(doc).encode()

    produce(cfg, cfg.topics.activity, [
        command(window[0] - 1), command(window[0] + 100), command("2025-06-15T15:06:35"),
        command(window[0] + 200, "pump-002"), command(window[1] + 1)])
    out = tmp_path / "bundle"
    done = twinguard("--config", str(write_config(cfg, tmp_path / "t.toml")), "forensics", tid,
                     "--out", str(out))
    assert done.returncode == 0, done.stderr
    raw = [json.loads(line) for line in (out / "source_messages.jsonl").read_text().splitlines()]
    assert [m["value"]["ts"] for m in raw] == [window[0] + 100, "2025-06-15T15:06:35"]
    assert "rule-based detection" in _read(out / "model.json")["note"]
    assert "operator `op.0005`" in (out / "README.md").read_text()
