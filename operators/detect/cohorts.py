"""Intel-driven policy applied: the detection config and response tier of a device's cohort while
live policy entries match it (grammar and reasons: operators/intel/policy.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.policy import NO_PEER
from twinguard.operators.intel.table import IntelIndex
from twinguard.operators.settings import DetectionConfig
from twinguard.schemas.messages import Action, PolicyRule

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Effective:
    """What the live policies matching one device change: the detection config and the tier."""

    detection: DetectionConfig
    tier: str | None  # None: the responses' own tiers
    why: str  # for threat reasons: which entries, what they set


def effective(base: DetectionConfig, rules: Iterable[tuple[str, PolicyRule]]) -> Effective | None:
    """The matching (indicator, rule) pairs applied to `base`, the tightest value of each setting
    winning; None if none match. A rule's value counts as given only with `loosen`, else capped at
    the configured one."""
    thresholds, zs, tier, names = [], [], None, []
    for name, r in rules:
        names.append(name)
        if r.model_threshold is not None:
            thresholds.append(_capped(r.model_threshold, base.model_threshold, r.loosen))
        if r.anomaly_z is not None:
            zs.append(_capped(r.anomaly_z, base.anomaly_z, r.loosen))
        if r.tier == "approval" or (r.tier == "auto" and tier is None):
            tier = r.tier
    if not names:
        return None
    threshold = min(thresholds, default=base.model_threshold)
    z = min(zs, default=base.anomaly_z)
    det = dataclasses.replace(base, model_threshold=threshold, anomaly_z=z,
                              anomaly_volume_z=base.anomaly_volume_z * z / base.anomaly_z)
    why = (f"intel policy {'; '.join(sorted(names))}: model_threshold {threshold:g}, "
           f"anomaly_z {z:g}" + (f", responses {tier}" if tier else ""))
    return Effective(det, tier, why)


def _capped(value: float, configured: float, loosen: bool) -> float:
    return value if loosen else min(value, configured)


def with_tier(actions: list[Action], tier: str | None, why: str) -> list[Action]:
    """`actions` under a policy's tier: `approval` holds them all; `auto` releases those that wait
    by the class's design, never a block whose address is unknown (NO_PEER)."""
    if tier is None:
        return actions
    return [msgspec.structs.replace(a, tier=tier, reason=f"{a.reason}; {why}")
            if a.tier != tier and (tier == "approval" or NO_PEER not in a.reason) else a
            for a in actions]


def cohort_rows(index: IntelIndex, base: DetectionConfig, device_types: list[str],
                fws: list[str | None], window_ends: list[int]) -> list[tuple[I64, Effective]]:
    """Rows (windows) under live policies, grouped by the set of entries matching them, each group
    with its Effective; [] when no policy is known (the usual case costs one check)."""
    if not index.cohorts:
        return []
    groups: dict[tuple[str, ...], list[int]] = {}
    rules: dict[tuple[str, ...], list[tuple[str, PolicyRule]]] = {}
    for r, (t, fw, end) in enumerate(zip(device_types, fws, window_ends, strict=True)):
        found = index.policies_for(t, fw, end)
        if found:
            key = tuple(name for name, _ in found)
            groups.setdefault(key, []).append(r)
            rules[key] = found
    out = []
    for key, rows in groups.items():
        eff = effective(base, rules[key])
        if eff is not None:
            out.append((np.array(rows, dtype=np.int64), eff))
    return out
