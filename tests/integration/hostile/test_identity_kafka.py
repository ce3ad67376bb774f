"""Real broker, `twinguard run`: unauthenticated messages do not change who a twin says its device is,
and response actions aim at the offending traffic's observed peer, never at a claimed fleet server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.signed_fleet import BROKER, actions, home, processed, produce, report, run
from twinguard.pipelines.config import Config

DEVICES, SECONDS, ATTACK_S = 8, 90, 60
METER = {"voltage_v": 230.0, "current_a": 1.0, "power_w": 207.0, "energy_kwh": 100.0}


def stream(d: int, hostile: dict[float, dict[str, Any]]) -> list[tuple[float, bytes, bytes]]:
    """Device d's reports, 1 Hz, with `hostile` ones (time -> overrides) added or replacing the
    report of that second; sequence numbers keep counting."""
    times = sorted(set(range(SECONDS)) - {t for t in hostile if float(t).is_integer()} | set(hostile))
    out = []
    for seq, t in enumerate(times):
        key, value = report(d, t, seq, **hostile.get(t, {}))
        out.append((t, key, value))
    return out


def test_forgeries_keep_identity_and_blocks_aim_at_the_observed_peer(unique_topics: Config,
                                                                    tmp_path: Path) -> None:
    cfg = unique_topics
    forged = {"fw": "9.9.9-evil", "src_ip": "198.51.100.66", "dst_port": 1000,
              "auth": {"failures": 50, "successes": 3, "principal": "root"}}
    hostile: dict[int, dict[float, dict[str, Any]]] = {
        # 0: unsigned and badly signed reports claiming new firmware, address and logins
        0: {ATTACK_S + k: {**forged, "sign": ("none", "bad")[k % 2]} for k in range(10)},
        # 1: signed, claims the fleet's broker as its source while reporting failed logins
        1: {ATTACK_S + k / 2: {"src_ip": BROKER, "auth": {"failures": 5}} for k in range(1, 10, 2)},
        # 2: signed, claims to be a smart meter
        2: {ATTACK_S + 0.5: {"type": "smart_meter", "signals": METER}},
        # 3: signed, uploads 2 MB per message to a destination it never used
        3: {ATTACK_S + k / 2: {"dst_ip": "198.51.100.7", "dst_port": 443, "bytes_out": 2_000_000}
            for k in range(1, 8, 2)},
        # 4: signed, failed logins reported from a foreign address between its own reports
        4: {ATTACK_S + k / 2: {"src_ip": "203.0.113.50", "auth": {"failures": 5}}
            for k in range(1, 10, 2)},
    }
    msgs = sorted((m for d in range(DEVICES) for m in stream(d, hostile.get(d, {}))),
                  key=lambda m: m[0])
    produce(cfg, cfg.topics.telemetry, [(k, v) for _, k, v in msgs])

    threats, dead, twins, _ = run(cfg, tmp_path)

    assert processed(twins) + len(dead) == len(msgs)  # every message accounted for
    assert [(d["stage"], d["key"]) for d in dead] == [("twin", "thermostat-000002")]
    assert "this signed message claims type 'smart_meter': rejected" in str(dead[0]["reason"])
    assert twins["thermostat-000002"]["device_type"] == "thermostat"

    victim = twins["thermostat-000000"]
    assert (victim["fw"], victim["src_ip"]) == ("4.2.0", home(0))
    assert not any("9.9.9" in r or "auth attempt" in r for r in victim["risk_reasons"])  # type: ignore[attr-defined]
    on_victim = {t["threat"] for t in threats if t["device_id"] == "thermostat-000000"}
    assert on_victim == {"tampering"}, on_victim

    blocks: dict[str, list[tuple[Any, Any]]] = {}
    for a in actions(cfg):
        if a["action"] == "block_ip":
            blocks.setdefault(str(a["device_id"]), []).append((a["target"], a["tier"]))
    assert all(target != BROKER for b in blocks.values() for target, _ in b), blocks
    assert set(blocks["thermostat-000001"]) == {("thermostat-000001", "approval")}
    assert set(blocks["thermostat-000003"]) == {("198.51.100.7", "auto")}
    assert ("203.0.113.50", "auto") in blocks["thermostat-000004"]
