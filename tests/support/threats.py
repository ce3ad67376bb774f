"""Threat records as the dataflow writes them, for tests of the tools that read the threats topic."""

from __future__ import annotations

import msgspec

from twinguard.schemas.messages import Contribution, SourceRange, ThreatEvent


def threat_event(tid: str, device_id: str, threat: str = "brute_force", severity: str = "high",
                 detected_at: int = 1_700_000_000_000, *, device_type: str = "thermostat",
                 reason: str = "auth_burst: 40 failed logins in 10 s",
                 source: SourceRange | None = None) -> ThreatEvent:
    """A schema-valid threat of `threat` on `device_id` (window: the 10 s before detection)."""
    return ThreatEvent(
        id=tid, device_id=device_id, device_type=device_type, threat=threat, severity=severity,
        score=0.97, probabilities={threat: 0.97, "normal": 0.03}, detectors=["auth_burst"],
        reasons=[reason], features=[Contribution("auth_failures_sum", 40.0, 2.5)],
        model_version="test-model", feature_schema="test", window_start=detected_at - 10_000,
        window_end=detected_at - 1, detected_at=detected_at, actions=["block_source"],
        source=source)


def encoded(ev: ThreatEvent) -> tuple[bytes, bytes]:
    """(key, value) as the sink writes it: keyed by device id."""
    return ev.device_id.encode(), msgspec.json.encode(ev)
