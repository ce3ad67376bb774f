"""Match threat events against attack labels: detected, right class, time to detect, false alarms.

Event-level and honest: an attack counts as detected only by a threat on its device (an operator's
attack: naming its user), of its class,
whose window overlaps the attack (plus a grace of one window); nothing is point-adjusted.
A threat fired by a replayed message (which carries an old timestamp) is dated by the device's latest
authentic message, up to one report interval before the first attack message: MARK_SLACK_MS allows
for that (2 s = the slowest shipped device type's interval).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.pipelines.text import printable

MARK_SLACK_MS = 2_000


@dataclass
class AttackResult:
    label: AttackLabel
    detected: bool
    right_class: bool
    classes_seen: list[str]
    time_to_detect_ms: int | None


@dataclass
class Evaluation:
    attacks: list[AttackResult]
    false_alarms: list[dict[str, Any]]
    normal_devices: int
    normal_devices_alarmed: int
    threats_by_class: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        n = len(self.attacks)
        right = [a for a in self.attacks if a.right_class]
        ttd = sorted(a.time_to_detect_ms for a in right if a.time_to_detect_ms is not None)
        per_class: dict[str, dict[str, int]] = {}
        for a in self.attacks:
            c = per_class.setdefault(a.label.threat, {"attacks": 0, "detected": 0, "right_class": 0})
            c["attacks"] += 1
            c["detected"] += a.detected
            c["right_class"] += a.right_class
        return {
            "attacks": n, "detected": sum(a.detected for a in self.attacks),
            "detected_right_class": len(right),
            "time_to_detect_ms_median": ttd[len(ttd) // 2] if ttd else None,
            "time_to_detect_ms_max": ttd[-1] if ttd else None,
            "detected_within_2s": sum(t <= 2000 for t in ttd),
            "false_alarms": len(self.false_alarms), "normal_devices": self.normal_devices,
            "normal_devices_alarmed": self.normal_devices_alarmed,
            "threats_by_class": dict(self.threats_by_class), "per_class": per_class,
        }


def evaluate(threats: list[dict[str, Any]], labels: list[AttackLabel], devices: set[str],
             grace_ms: int = 10_000) -> Evaluation:
    """Score threat events (decoded JSON) against labels for a fleet of `devices`."""
    by_device: dict[str, list[dict[str, Any]]] = {}
    by_user: dict[str, list[dict[str, Any]]] = {}
    for t in threats:
        by_device.setdefault(str(t["device_id"]), []).append(t)
        if t.get("user"):
            by_user.setdefault(str(t["user"]), []).append(t)
    matched: set[str] = set()
    results = []
    for lab in labels:
        mine = by_user.get(lab.user, []) if lab.user is not None else by_device.get(lab.device_id, [])
        hits = [t for t in mine
                if t["window_end"] > lab.start - MARK_SLACK_MS
                and t["window_start"] <= lab.end + grace_ms]
        matched.update(t["id"] for t in hits)
        right = [t for t in hits if t["threat"] == lab.threat]
        ttd = min((max(t["window_end"] - lab.start, 0) for t in right), default=None)
        results.append(AttackResult(lab, bool(hits), bool(right), sorted({t["threat"] for t in hits}),
                                    ttd))
    attacked = {lab.device_id for lab in labels if lab.user is None}
    false = [t for t in threats if t["id"] not in matched]
    normal = devices - attacked
    return Evaluation(results, false, len(normal),
                      len({t["device_id"] for t in false if t["device_id"] in normal}),
                      Counter(str(t["threat"]) for t in threats))


def format_table(ev: Evaluation) -> str:
    """Per-class detection table for the terminal."""
    s = ev.summary()
    lines = [f"{'class':<22}{'attacks':>8}{'detected':>10}{'right class':>13}{'threats':>9}"]
    for c, v in sorted(s["per_class"].items()):
        lines.append(f"{printable(c):<22}{v['attacks']:>8}{v['detected']:>10}{v['right_class']:>13}"
                     f"{s['threats_by_class'].get(c, 0):>9}")
    lines.append(f"attacks detected with the right class: {s['detected_right_class']}/{s['attacks']}"
                 f" ({s['detected_within_2s']} within 2 s of their first event); median time to "
                 f"detect {s['time_to_detect_ms_median']} ms (event time)")
    lines.append(f"false alarms: {s['false_alarms']} threat events not matching an attack; "
                 f"{s['normal_devices_alarmed']}/{s['normal_devices']} normal devices alarmed")
    return "\n".join(lines)
