"""Real broker, real CLI: the single messages that stopped the whole flow (issue 18, items 1-4) are
dead-lettered with reasons and the run goes on: signed huge numbers, nesting 1,000 deep, a message
of 900 KB, and hostile intel (a huge note, a deep record, 0.0.0.0/0)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

from tests.support.signed_fleet import START_MS, fleet, processed, produce, report, run
from twinguard.pipelines.config import Config

DEVICES, SECONDS = 8, 20
DEEP = "[" * 1000 + "]" * 1000


def hostile_telemetry() -> list[tuple[bytes, bytes]]:
    """Signed reports of devices 20.. with huge numbers, deep nesting, and one of 900 KB."""
    out = []
    for seq, v in enumerate((1e40, 1e50, -1e45, 1.7976931348623157e308), start=1):
        signals = {"temperature_c": v, "setpoint_c": 21.0, "humidity_pct": 45.0, "heating": 0.0}
        out.append(report(20, seq, seq, signals=signals))
    key, value = report(21, 1, 1)
    out.append((key, value[:-1] + f', "x": {DEEP}}}'.encode()))
    out.append((key, value.replace(b'"net": {', f'"net": {{"extra": {DEEP}, '.encode())))
    doc = json.loads(report(22, 1, 1)[1])
    doc["pad"] = random.Random(3).randbytes(450_000).hex()
    out.append((b"thermostat-000022", json.dumps(doc).encode()))
    return out


def hostile_activity() -> list[tuple[bytes, bytes]]:
    dev = "thermostat-000001"
    base = {"device_id": dev, "ts": START_MS + 5000, "user": "op", "action": "set"}
    deep = json.dumps({**base, "params": {"setpoint_c": 20.0}})[:-1] + f', "x": {DEEP}}}'
    huge = json.dumps({**base, "params": {"setpoint_c": 1e50}})
    return [(dev.encode(), deep.encode()), (dev.encode(), huge.encode())]


def hostile_intel() -> list[tuple[bytes, bytes]]:
    note = json.dumps({"indicator": "10.0.0.10", "kind": "ip", "severity": "high", "note": "N" * 100_000})
    deep = json.dumps({"indicator": "100.64.0.1", "kind": "ip"})[:-1] + f', "x": {DEEP}}}'
    slash0 = json.dumps({"indicator": "0.0.0.0/0", "kind": "cidr", "severity": "critical"})
    good = json.dumps({"indicator": "198.51.100.0/24", "kind": "cidr", "severity": "high"})
    return [(b"10.0.0.10", note.encode()), (b"100.64.0.1", deep.encode()),
            (b"0.0.0.0/0", slash0.encode()), (b"198.51.100.0/24", good.encode())]


def test_single_hostile_messages_are_dead_lettered_and_the_fleet_runs_on(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    good, bad = fleet(DEVICES, SECONDS), hostile_telemetry()
    produce(cfg, cfg.topics.intel, hostile_intel())
    produce(cfg, cfg.topics.telemetry, good[: len(good) // 2] + bad + good[len(good) // 2:])
    produce(cfg, cfg.topics.activity, hostile_activity())
    _, dead, twins, _ = run(cfg, tmp_path)

    by_stage: dict[str, list[dict[str, object]]] = {}
    for d in dead:
        assert d["reason"], d
        by_stage.setdefault(str(d["stage"]), []).append(d)
    telemetry = by_stage.get("decode", [])
    assert processed(twins) + len(telemetry) == len(good) + len(bad)  # nothing lost
    assert processed(twins) == len(good) and len(telemetry) == len(bad)
    reasons = [str(d["reason"]) for d in telemetry]
    assert sum("is beyond ±1e+12" in r for r in reasons) == 4, reasons
    assert sum("nested more than" in r for r in reasons) == 2, reasons
    big = [d for d in telemetry if "exceeds pipeline.max_message_bytes" in str(d["reason"])]
    assert len(big) == 1 and big[0]["truncated"] is True
    original = next(v for k, v in bad if k == b"thermostat-000022")
    assert big[0]["value_length"] == len(original)
    assert big[0]["value_sha256"] == hashlib.sha256(original).hexdigest()
    assert original.startswith(base64.b64decode(str(big[0]["value_b64"])))

    activity = sorted(str(d["reason"]) for d in by_stage.get("decode_activity", []))
    assert len(activity) == 2 and "nested more than" in activity[0] and "±1e+12" in activity[1]

    intel = sorted(str(d["reason"]) for d in by_stage.get("intel", []))
    assert len(intel) == 3, intel
    assert any("exceeds intel.max_record_bytes" in r for r in intel)
    assert any("nested more than" in r for r in intel)
    assert any("broader than /8" in r for r in intel)
    # 0.0.0.0/0 was refused: no device is listed as talking to listed addresses
    assert all(float(str(t["risk"])) < 50 for t in twins.values()), [t["risk"] for t in twins.values()]
