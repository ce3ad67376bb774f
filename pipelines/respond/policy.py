"""Which step an action becomes, on which actuator, and whether it may run unattended (and why)."""

from __future__ import annotations

from dataclasses import dataclass

from twinguard.pipelines.respond.settings import RespondConfig

# actions that cut a device off: never on a life-critical type, where a fail-safe replaces them
CUT_OFF = frozenset({"quarantine", "lock_credentials", "rotate_key", "block_ip", "rate_limit"})
# containments that auto-revert when their TTL expires unless an analyst confirms them
CONTAINMENTS = frozenset({"quarantine", "lock_credentials", "rate_limit", "block_ip", "suspend_user"})
TIERS = ("auto", "approval")


@dataclass(frozen=True)
class Plan:
    """The decided step: what runs where, whether it needs approval, and the explanation."""

    action: str
    actuator: str
    tier: str
    reason: str


def plan(action: str, requested_tier: str, device_type: str | None, cfg: RespondConfig,
         threat: str | None = None) -> Plan:
    """Policy: a configured tier per action, action@threat_class or action:device_type (the most
    specific wins, in that order) overrides the dataflow's; a life-critical type always needs
    approval and gets a fail-safe instead of a cut-off; a device whose type is unknown gets
    `unknown_type_tier`. The threat class leads the explanation: why the device is acted on."""
    why = [f"for a {threat} threat"] if threat else []
    step = action
    if device_type in cfg.life_critical() and action in CUT_OFF:
        step = "failsafe"
        why.append(f"{device_type} is life-critical: never cut off, a fail-safe replaces {action}")
    tier, source = requested_tier, "threat policy"
    for key in (action, f"{action}@{threat}", f"{action}:{device_type}"):
        if key in cfg.tiers:
            tier, source = cfg.tiers[key], f"[respond.tiers] {key}"
    if tier not in TIERS:
        raise ValueError(f"{source}: tier must be auto or approval, got {tier!r}")
    if device_type is None and tier == "auto" and cfg.unknown_type_tier == "approval":
        tier, source = "approval", "device type unknown (no twin seen yet)"
    if device_type in cfg.life_critical() and tier == "auto":
        tier, source = "approval", f"{device_type} is life-critical"
    why.append(f"tier {tier} ({source})")
    actuator = cfg.routes.get(step, "")
    return Plan(step, actuator, tier, "; ".join(why))
