"""Suppressions from analyst verdicts, shared by every shard of a process.

A false_positive or benign verdict on a threat suppresses that threat class for a scope until the
verdict's ts + ttl: the device, its device type, or its cohort (type + firmware: a firmware rollout
is the typical fleet-wide benign change). A true_positive suppresses nothing. A later verdict on the
same threat replaces the earlier one (the topic is compacted by threat id), so an analyst undoes a
suppression by giving the threat another verdict.

Benign at scope device additionally re-learns that device's baseline: "benign" says the device's
behaviour changed for a legitimate reason (new duty cycle, relocation), so its old baseline is
wrong; a false_positive says the detector was wrong about normal behaviour, so the baseline stays.
Wider scopes never re-learn: one verdict must not reset a whole fleet's baselines.

The reader thread (reader.py) applies records and publishes an immutable index; the shards only
read `current` (one attribute read, atomic), as with intel (operators/intel/table.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from twinguard.schemas.messages import Feedback

SUPPRESSING = frozenset({"false_positive", "benign", "benign_positive"})
BENIGN = frozenset({"benign", "benign_positive"})


@dataclass(frozen=True)
class Suppression:
    until_ms: int
    threat_id: str  # the threat whose verdict set it
    scope: str
    verdict: str


def scope_key(scope: str, device_id: str, device_type: str, fw: str | None) -> str:
    """What a scope matches: the device id, the type name, or type|firmware."""
    if scope == "device":
        return device_id
    if scope == "type":
        return device_type
    return f"{device_type}|{fw or ''}"


@dataclass(frozen=True)
class SuppressionIndex:
    """An immutable snapshot: (scope, scope key, threat class) -> the longest-lived suppression,
    and device id -> ts of the latest benign verdict that asks to re-learn its baseline."""

    by_key: Mapping[tuple[str, str, str], Suppression] = field(
        default_factory=lambda: MappingProxyType({}))
    relearn: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def match(self, device_id: str, device_type: str, fw: str | None, threat: str,
              now_ms: int) -> Suppression | None:
        """The live suppression of `threat` on this device, narrowest scope first."""
        if not self.by_key:
            return None
        for scope in ("device", "cohort", "type"):
            hit = self.by_key.get((scope, scope_key(scope, device_id, device_type, fw), threat))
            if hit is not None and hit.until_ms > now_ms:
                return hit
        return None


class SuppressionTable:
    """Verdicts by threat id (written by one reader thread) and the index the shards read."""

    def __init__(self) -> None:
        self._verdicts: dict[str, tuple[Feedback, int]] = {}  # threat id -> (verdict, until ms)
        self._lock = threading.Lock()
        self.current = SuppressionIndex()
        self.failure: str | None = None  # set when the reader stopped for good

    def __len__(self) -> int:
        return len(self._verdicts)

    def apply(self, threat_id: str, fb: Feedback | None, until_ms: int = 0) -> None:
        """Record `fb` (None: a tombstone, the threat's verdict withdrawn)."""
        with self._lock:
            if fb is None:
                self._verdicts.pop(threat_id, None)
            else:
                self._verdicts[threat_id] = (fb, until_ms)

    def publish(self, now_ms: int) -> None:
        """Rebuild the index from the live verdicts; expired ones are forgotten."""
        by_key: dict[tuple[str, str, str], Suppression] = {}
        relearn: dict[str, int] = {}
        with self._lock:
            for tid in [t for t, (_, until) in self._verdicts.items() if until <= now_ms]:
                del self._verdicts[tid]
            live = list(self._verdicts.items())
        for tid, (fb, until) in live:
            if fb.verdict not in SUPPRESSING or fb.threat is None or fb.device_id is None:
                continue
            key = (fb.scope, scope_key(fb.scope, fb.device_id, fb.device_type or "", fb.fw),
                   fb.threat)
            old = by_key.get(key)
            if old is None or old.until_ms < until:
                by_key[key] = Suppression(until, tid, fb.scope, fb.verdict)
            if fb.verdict in BENIGN and fb.scope == "device":
                relearn[fb.device_id] = max(relearn.get(fb.device_id, 0), fb.ts)
        self.current = SuppressionIndex(MappingProxyType(by_key), MappingProxyType(relearn))
