"""Intel-driven policy: intel entries of kind `policy` tighten detection and response for a cohort.

Grammar (schemas/messages.py `Intel`, `PolicyRule`):

    {"indicator": "type=thermostat,fw=4.2.1", "kind": "policy", "severity": "high",
     "policy": {"model_threshold": 0.5, "anomaly_z": 3.0, "tier": "approval"},
     "expires_at": 1767225600000, "note": "campaign against 4.2.1"}

- The cohort (`indicator`): `type=<device type>` and/or `fw=<firmware version>`, joined by `,`,
  each at most once; a device is in it when every given part matches. Its canonical form (type
  first) is the key on the compacted topic, so re-publishing replaces and a tombstone withdraws it.
- `model_threshold` (0-1]: the model's probability needed to raise a threat alone; `anomaly_z`
  (sigmas): the untyped anomaly detector's threshold, volumes scaled alike; `tier` `approval`:
  every response to the cohort's threats waits for an operator.
- Tightening only: a threshold above the configured one is ignored, unless `loosen: true`; tier
  `auto` (run unattended what normally waits) is refused without `loosen: true`. Where several
  entries match, the tightest value of each wins.
- Live while `expires_at` (event time of the window) is ahead, and until withdrawn.

This module is the grammar (the intel table validates with it); operators/detect/cohorts.py applies
the live rules to windows and actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from twinguard.schemas.messages import PolicyRule

PARTS = ("type", "fw")


class PolicyRejectError(ValueError):
    """A policy intel record breaks the grammar; str(error) is the dead-letter reason."""


@dataclass(frozen=True)
class Cohort:
    device_type: str | None
    fw: str | None

    def matches(self, device_type: str, fw: str | None) -> bool:
        return ((self.device_type is None or self.device_type == device_type)
                and (self.fw is None or self.fw == fw))

    @property
    def indicator(self) -> str:
        return ",".join(f"{k}={v}" for k, v in zip(PARTS, (self.device_type, self.fw), strict=True)
                        if v is not None)


def parse_cohort(indicator: str) -> Cohort:
    """`type=<device type>` and/or `fw=<version>`, comma-separated. Raises PolicyRejectError."""
    found: dict[str, str] = {}
    for part in indicator.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or key not in PARTS or not value.strip():
            raise PolicyRejectError(
                f"policy cohort {indicator[:80]!r}: expected 'type=<device type>' and/or "
                "'fw=<version>' joined by ',' (e.g. 'type=thermostat,fw=4.2.1')")
        if key in found:
            raise PolicyRejectError(f"policy cohort {indicator[:80]!r} names {key} twice")
        found[key] = value.strip()
    return Cohort(found.get("type"), found.get("fw"))


def check_rule(kind: str, rule: PolicyRule | None) -> None:
    """A rule belongs to a policy entry, says something, and loosens only when it says so."""
    if kind != "policy":
        if rule is not None:
            raise PolicyRejectError(f"a {kind} intel entry carries a policy; only kind 'policy' may")
        return
    if rule is None or (rule.model_threshold is None and rule.anomaly_z is None
                        and rule.tier is None):
        raise PolicyRejectError("policy entry without a change: give policy.model_threshold, "
                                "policy.anomaly_z and/or policy.tier")
    if rule.tier == "auto" and not rule.loosen:
        raise PolicyRejectError("policy tier 'auto' loosens responses (approval -> unattended); "
                                "set policy.loosen = true if that is meant")
