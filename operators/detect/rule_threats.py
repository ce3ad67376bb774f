"""Threat events (+ recommended actions) raised by rules outside the window path: insider, drift.

Same contract and id scheme as the window threats of operators/twin/engine.py: the id is a hash of what
identifies the evidence (device or user, class, rule, event time), so a re-processed command or report
after a restart yields the same id.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from twinguard.operators.batches import OutMsg
from twinguard.operators.detect.policy import RESPONSES, output_id, response_actions, severity
from twinguard.schemas.features import FEATURE_SCHEMA
from twinguard.schemas.messages import Contribution, ThreatEvent

RULES_VERSION = "activity-rules-1"
RULE_SCORE = 0.95
_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class RuleHit:
    """One rule verdict: what fired, on which device (and user), over which event-time span."""

    device_id: str
    device_type: str
    threat: str
    rule: str
    reason: str
    start: int
    end: int
    evidence: dict[str, float]
    user: str | None = None


def rule_outputs(hit: RuleHit, now_ms: int, dry_run: bool) -> list[OutMsg]:
    """The threat event and its recommended actions, encoded for the sink."""
    tid = rule_id(hit)
    responses = RESPONSES[hit.threat]
    ev = ThreatEvent(
        id=tid, device_id=hit.device_id, device_type=hit.device_type, threat=hit.threat,
        severity=severity(hit.threat, RULE_SCORE, 1), score=RULE_SCORE, probabilities={},
        detectors=[hit.rule], reasons=[f"{hit.rule}: {hit.reason}"],
        features=[Contribution(k, round(float(v), 4), 0.0) for k, v in hit.evidence.items()],
        model_version=RULES_VERSION, feature_schema=FEATURE_SCHEMA, window_start=hit.start,
        window_end=hit.end, detected_at=now_ms, actions=[x.action for x in responses],
        user=hit.user)
    key = hit.device_id.encode()
    out = [OutMsg("threats", key, _enc.encode(ev))]
    out += [OutMsg("actions", key, _enc.encode(act)) for act in response_actions(
        hit.threat, tid, hit.device_id, now_ms, dry_run, user=hit.user)]
    return out


def rule_id(hit: RuleHit) -> str:
    """Deterministic threat id of a rule hit."""
    who = hit.user if hit.user is not None else hit.device_id
    return output_id(who, hit.device_id, hit.threat, hit.rule, str(hit.end))

