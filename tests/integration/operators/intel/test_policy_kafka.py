"""Real broker, real CLI: an intel `policy` entry for a firmware cohort tightens the anomaly threshold
while live, so a borderline window becomes a threat (with its responses held for approval) on the
cohort's device only; after the entry expires the same deviation is quiet again. A malformed policy
is dead-lettered with its reason and a withdrawn one changes nothing."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from tests.support.signed_fleet import actions, produce, report, run
from twinguard.pipelines.config import Config

# Event time a little ahead of the wall clock, window-aligned (each deviation fills one window): the
# intel reader drops entries already expired by the wall clock, so the entry must still be live
# when the run starts; within the run, expiry is judged by each window's event time. The clock-skew
# detector is widened (CONFIG) so reports from a few minutes ahead are not themselves threats.
CONFIG = "[pipeline]\nshards = 1\n[detection]\nalert_cooldown_ms = 1000\nclock_skew_ms = 3600000\n"


def _t0() -> int:
    return (int(time.time()) + 120) // 10 * 10_000
DEVIATE = (range(100, 110), range(170, 180))  # seconds; the entry expires in between (at 150 s)
COHORT_FW, OTHER_FW = "4.2.1", "4.2.0"


def _telemetry(t0: int, extra_bytes: float) -> list[tuple[bytes, bytes]]:
    """8 thermostats at 1 Hz with noisy traffic; devices 0 (in the cohort) and 4 (not) send
    `extra_bytes` more per report in the two deviation windows."""
    rnd = random.Random(1)
    out = []
    for t in range(200):
        for d in range(8):
            sent = 220 + rnd.gauss(0, 10)
            if d in (0, 4) and any(t in r for r in DEVIATE):
                sent += extra_bytes
            out.append(report(d, t, t, fw=COHORT_FW if d < 4 else OTHER_FW, ts=t0 + 1000 * t,
                              bytes_out=int(sent)))
    return out


def _policy(indicator: str, expires_at: int, **rule: object) -> tuple[bytes, bytes]:
    doc = {"indicator": indicator, "kind": "policy", "severity": "high", "expires_at": expires_at,
           "note": "campaign against this firmware", "policy": rule}
    return indicator.encode(), json.dumps(doc).encode()


def test_a_policy_tightens_its_cohort_while_live_and_relaxes_after(unique_topics: Config,
                                                                   tmp_path: Path) -> None:
    cfg, t0 = unique_topics, _t0()
    expires = t0 + 150_000
    produce(cfg, cfg.topics.intel, [
        _policy(f"fw={COHORT_FW}", expires, anomaly_z=2.5, tier="approval"),
        _policy(f"type=thermostat,fw={OTHER_FW}", expires, anomaly_z=2.5),
        (f"type=thermostat,fw={OTHER_FW}".encode(), b""),  # withdrawn
        _policy("firmware=4.2.0", expires, anomaly_z=2.5),  # not the grammar
        _policy(f"fw={COHORT_FW}x", expires, tier="auto"),  # loosening without saying so
    ])
    produce(cfg, cfg.topics.telemetry, _telemetry(t0, 200.0))
    threats, dead, _, _ = run(cfg, tmp_path, CONFIG)

    flagged = [(t["device_id"], t["threat"], t["window_end"]) for t in threats]
    assert flagged == [("thermostat-000000", "anomaly", t0 + 110_000)], threats  # cohort, live
    assert any("intel policy fw=4.2.1" in why for why in threats[0]["reasons"])
    acts = [a for a in actions(cfg) if a["threat_id"] == threats[0]["id"]]
    assert acts and all(a["tier"] == "approval" for a in acts)  # `investigate` is auto by default
    reasons = sorted(d["reason"] for d in dead if d["stage"] == "intel")
    assert len(reasons) == 2
    assert "expected 'type=<device type>'" in reasons[0] and "loosen" in reasons[1]


def test_without_the_policy_the_same_windows_are_quiet(unique_topics: Config,
                                                       tmp_path: Path) -> None:
    cfg = unique_topics
    produce(cfg, cfg.topics.telemetry, _telemetry(_t0(), 200.0))
    threats, _, twins, _ = run(cfg, tmp_path, CONFIG)
    assert threats == [] and len(twins) == 8  # borderline: below the configured threshold
