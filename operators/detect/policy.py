"""Decide: combine detector verdicts and model probabilities into threats, severities and responses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.detectors import DETECTORS, PRIORITY
from twinguard.operators.settings import DetectionConfig
from twinguard.schemas.features import SEVERITIES, THREAT_CLASSES
from twinguard.schemas.messages import Action

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
CLASS_INDEX = {c: i for i, c in enumerate(THREAT_CLASSES)}
ANOMALY = CLASS_INDEX["anomaly"]
DETECTOR_CONFIDENCE = 0.95
BASE_SEVERITY = {"dos": 1, "scan": 0, "brute_force": 1, "exfiltration": 2,
                 "false_data_injection": 2, "replay": 2, "tampering": 2, "firmware_tampering": 3,
                 "cloning": 3, "unauthorized_access": 2, "hijack": 3, "insider": 2, "drift": 1,
                 "anomaly": 0}


@dataclass(frozen=True)
class Response:
    action: str
    tier: str  # auto = may run unattended; approval = needs an operator
    why: str
    # what it acts on: the device, the operator behind an insider threat, or the offending
    # traffic's foreign source / new destination (operators/twin/identity.py picks the address)
    aim: str = "device"


SOURCE, DESTINATION = "source", "destination"
NO_PEER = ("no address of the offending traffic may be blocked unattended (none seen in the threat's "
           "window, or it is the device's own, a fleet server or protected): find it at the gateway")


# Recommended response per class; dangerous ones (cutting a device off) wait for approval.
RESPONSES: dict[str, tuple[Response, ...]] = {
    "dos": (Response("rate_limit", "auto", "throttle the flooding device at the gateway"),),
    "scan": (Response("quarantine", "approval", "move the scanning device to an isolated segment"),),
    "brute_force": (Response("lock_credentials", "auto", "lock the targeted account"),
                    Response("block_ip", "auto", "block the sources of failed logins", SOURCE)),
    "exfiltration": (Response("block_ip", "auto", "block the unusual destination", DESTINATION),
                     Response("quarantine", "approval", "isolate the leaking device")),
    "false_data_injection": (Response("failsafe", "approval", "hold last trusted set-points"),),
    "replay": (Response("rotate_key", "auto", "rotate the device key and reset its session"),),
    "tampering": (Response("rotate_key", "auto", "rotate the device key; drop unsigned traffic"),),
    "firmware_tampering": (Response("quarantine", "approval", "isolate until firmware is re-flashed"),),
    "cloning": (Response("rotate_key", "auto", "revoke the shared identity's key; re-enrol the device"),
                Response("block_ip", "approval", "block the impostor's source address", SOURCE)),
    "unauthorized_access": (Response("lock_credentials", "auto", "lock the account that logged in"),
                            Response("block_ip", "approval", "block the new source address", SOURCE)),
    "hijack": (Response("quarantine", "approval", "isolate the device; its behaviour profile changed"),),
    "insider": (Response("suspend_user", "approval", "suspend the operator's command rights", "user"),),
    "drift": (Response("resync_twin", "auto", "re-send the desired state and verify it"),),
    "anomaly": (Response("investigate", "auto", "open a ticket with the window's forensic detail"),),
}


@dataclass(frozen=True)
class Decisions:
    cls: I64  # chosen class index per row, 0 (normal) = no threat
    score: F64


def decide(fired: npt.NDArray[np.bool_], probs: F64, warm: npt.NDArray[np.bool_],
           cfg: DetectionConfig, anomaly: F64 | None = None) -> Decisions:
    """Per window: the model's class if it agrees with a detector, or alone when confident and the
    device's own baseline is learned (`warm`); otherwise the highest-priority detector's class.
    An untyped `anomaly` yields to a confident model; it and normal rows score `anomaly` (the
    learning-mode score in [0, 1], operators/detect/anomaly.py) so the score stays continuous."""
    n = probs.shape[0]
    model_cls = probs.argmax(axis=1)
    model_p = probs[np.arange(n), model_cls]
    det_cls = np.array([CLASS_INDEX[d.threat] for d in DETECTORS], dtype=np.int64)
    anomaly = np.zeros(n) if anomaly is None else anomaly
    cls = np.zeros(n, dtype=np.int64)
    score = anomaly.copy()
    confident = (model_cls != 0) & (model_p >= cfg.model_threshold) & warm
    # only rows a detector flagged or the model may call alone can change (most rows are quiet)
    for i in np.flatnonzero(fired.any(axis=1) | confident).tolist():
        hits = det_cls[fired[i]]
        if hits.size and not (confident[i] and bool(np.all(hits == ANOMALY))):
            agree = model_cls[i] in hits
            cls[i] = model_cls[i] if agree else _first_by_priority(hits)
            if cls[i] != ANOMALY:
                score[i] = max(probs[i, cls[i]], DETECTOR_CONFIDENCE)
        elif confident[i]:
            cls[i], score[i] = model_cls[i], model_p[i]
    return Decisions(cls, score)


def _first_by_priority(hits: I64) -> int:
    names = {THREAT_CLASSES[h] for h in hits}
    return CLASS_INDEX[next(c for c in PRIORITY if c in names)]


def severity(threat: str, score: float, n_detectors: int) -> str:
    """Class base severity, one step up when the evidence is overwhelming."""
    level = BASE_SEVERITY.get(threat, 1) + (1 if score >= 0.99 and n_detectors >= 2 else 0)
    return SEVERITIES[min(level, len(SEVERITIES) - 1)]


def output_id(*parts: str) -> str:
    """Deterministic output id: the same evidence re-processed after a restart gets the same id."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def aims(threat: str) -> set[str]:
    """The traffic sides (SOURCE, DESTINATION) the responses to a threat need an address for."""
    return {x.aim for x in RESPONSES[threat]} & {SOURCE, DESTINATION}


def response_actions(threat: str, threat_id: str, device: str, now_ms: int, dry_run: bool,
                     peers: Mapping[str, str | None] | None = None, user: str | None = None
                     ) -> list[Action]:
    """The recommended responses to a threat, aimed at the user, the device or the observed peer
    (`peers[aim]`: an address of the offending traffic). A block without a peer waits for approval,
    aimed at the device: never at an address the traffic merely claims."""
    out = []
    for x in RESPONSES[threat]:
        target, tier, why = device, x.tier, x.why
        if x.aim == "user" and user:
            target = user
        elif x.aim in (SOURCE, DESTINATION):
            peer = (peers or {}).get(x.aim)
            if peer:
                target = peer
            else:
                tier, why = "approval", f"{x.why}; {NO_PEER}"
        out.append(Action(id=output_id(threat_id, x.action), threat_id=threat_id, device_id=device,
                          action=x.action, target=target, tier=tier, dry_run=dry_run,
                          reason=why, issued_at=now_ms, threat=threat))
    return out
