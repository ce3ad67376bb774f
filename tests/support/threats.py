"""Threat records as the dataflow writes them, for tests of the tools that read the threats topic."""

from __future__ import annotations

import msgspec

from twinguard.schemas.messages import Contribution, LastThreat, SourceRange, ThreatEvent, TwinState


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


def twin_state(device_id: str, device_type: str = "thermostat", status: str = "normal",
               risk: float = 0.0, *, updated_at: int = 1_700_000_000_000,
               last_threat: LastThreat | None = None) -> TwinState:
    """A schema-valid twin as the dataflow writes it to the twins topic."""
    return TwinState(device_id=device_id, device_type=device_type, version=10,
                     last_seen=updated_at, seq=10, fw="1.0.0", src_ip="10.0.0.1",
                     reported={"temp": 21.0}, status=status, threats_total=1 if last_threat else 0,
                     last_threat=last_threat, baseline_windows=5, updated_at=updated_at, risk=risk,
                     risk_reasons=["detections: 1 high"] if risk else [])


def encoded_twin(twin: TwinState) -> tuple[bytes, bytes]:
    return twin.device_id.encode(), msgspec.json.encode(twin)
