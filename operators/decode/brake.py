"""Dead-letter brake: contain one misbehaving key; stop loudly only when a partition's input is broken.

A flood of garbage under one message key is an attack on (or a fault of) one device: its rejects are
quarantined (dead-lettered with a `quarantined` reason, logged once, left out of the partition's
counts) and the rest of the fleet runs on. When a partition's rejects are spread over many keys the
deploy is broken, not the data (wrong topic, serializer or schema): stop loudly instead of
dead-lettering a whole topic. Keys are not authenticated, so quarantine never drops a key's *valid*
messages: whoever floods garbage under a device's key must not be able to blind its monitoring.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import msgspec

from twinguard.operators.batches import OutMsg
from twinguard.schemas.messages import DeadLetter

log = logging.getLogger(__name__)

KEY_BYTES = 256  # longer keys are tracked by their sha256: a hostile key must not grow the table
REASON_CHARS = 500  # as decode's dead letters
_dl_decoder = msgspec.json.Decoder(DeadLetter)
_encoder = msgspec.json.Encoder()


class DeadLetterBrakeError(RuntimeError):
    """Too many rejects across many keys of one partition; the message says how many and what to check."""


@dataclass(frozen=True)
class BrakeConfig:
    max_reject_ratio: float = 0.5  # over each count window of `window` messages
    window: int = 10_000
    max_consecutive: int = 5_000  # rejects in a row, regardless of the ratio
    enabled: bool = True
    quarantine_after: int = 100  # rejects of one key within a window: quarantine it
    min_keys: int = 10  # distinct (unquarantined) keys among the rejects before a partition stops
    max_keys: int = 10_000  # keys tracked per partition and window (bounded memory)


@dataclass
class _Counts:
    """One partition's current count window: messages, counted rejects, per-key rejects."""

    seen: int = 0
    rejected: int = 0
    run: int = 0
    run_keys: set[bytes] = field(default_factory=set)  # distinct keys of the run, up to min_keys
    window_keys: set[bytes] = field(default_factory=set)  # ... of the window's counted rejects
    per_key: dict[bytes, int] = field(default_factory=dict)
    quarantined: dict[bytes, str] = field(default_factory=dict)  # key -> printable name


@dataclass
class RejectBrake:
    cfg: BrakeConfig
    counts: dict[tuple[str, int], _Counts] = field(default_factory=dict)

    def observe(self, topic: str, partition: int, keys: list[bytes | None], rejected: list[bool],
                last_reason: str) -> list[tuple[int, str]]:
        """Account a batch's accept/reject flags (in order, with each message's key); raise when the
        partition is broken. Returns (position among the batch's rejects, note) for every reject of
        a quarantined key, so its dead letter can say so."""
        if not self.cfg.enabled or not rejected:
            return []
        c = self.counts.setdefault((topic, partition), _Counts())
        if not any(rejected):
            c.run, c.seen = 0, c.seen + len(rejected)
            c.run_keys.clear()
            self._roll(c, topic, partition, last_reason)
            return []
        notes: list[tuple[int, str]] = []
        j = 0  # position among the rejects = index into the batch's dead letters
        for key, bad in zip(keys, rejected, strict=True):
            c.seen += 1
            if not bad:
                c.run = 0
                c.run_keys.clear()
            else:
                k = _track_key(key)
                note = self._count_reject(c, k, key, topic, partition, last_reason)
                if note:
                    notes.append((j, note))
                j += 1
            if c.seen >= self.cfg.window:
                self._roll(c, topic, partition, last_reason)
        return notes

    def quarantined(self, topic: str, partition: int) -> list[str]:
        """Printable names of the keys currently quarantined on one partition."""
        c = self.counts.get((topic, partition))
        return sorted(c.quarantined.values()) if c else []

    def _count_reject(self, c: _Counts, k: bytes, key: bytes | None, topic: str, partition: int,
                      last_reason: str) -> str:
        """Count one reject; the quarantine note if its key is (now) quarantined, else ''."""
        n = c.per_key.get(k, 0) + 1
        if n > 1 or len(c.per_key) < self.cfg.max_keys:
            c.per_key[k] = n
        name = c.quarantined.get(k)
        if name is None and n >= self.cfg.quarantine_after:
            name = c.quarantined[k] = _printable(key)
            log.warning("dead-letter brake: key %s on %s[%d] sent %d rejected messages within %d "
                        "(last reason: %s); quarantined: its rejects are dead-lettered as "
                        "'quarantined', its valid messages are still processed, the rest of the "
                        "partition runs on", name, topic, partition, n, self.cfg.window,
                        last_reason[:200])
        if name is not None:
            return (f"quarantined key {name} ({n} rejects in the current window of "
                    f"{self.cfg.window} messages on {topic}[{partition}])")
        c.rejected += 1
        c.run += 1
        if len(c.run_keys) < self.cfg.min_keys:
            c.run_keys.add(k)
        if len(c.window_keys) < self.cfg.min_keys:
            c.window_keys.add(k)
        if c.run >= self.cfg.max_consecutive and len(c.run_keys) >= self.cfg.min_keys:
            self._stop(topic, partition, f"{c.run} messages in a row, from {self.cfg.min_keys}+ "
                       "keys, were rejected", last_reason)
        return ""

    def _roll(self, c: _Counts, topic: str, partition: int, last_reason: str) -> None:
        """End of a count window: judge the partition's ratio, keep quarantining keys that kept
        misbehaving, release the others."""
        if c.seen < self.cfg.window:
            return
        ratio = c.rejected / c.seen
        broad = len(c.window_keys) >= self.cfg.min_keys
        still = {k: n for k, n in c.quarantined.items()
                 if c.per_key.get(k, 0) >= self.cfg.quarantine_after}
        for k in c.quarantined.keys() - still.keys():
            log.info("dead-letter brake: key %s on %s[%d] released from quarantine (fewer than %d "
                     "rejects in the last %d messages)", c.quarantined[k], topic, partition,
                     self.cfg.quarantine_after, self.cfg.window)
        c.quarantined = still
        c.seen = c.rejected = 0
        c.per_key = dict.fromkeys(still, 0)
        c.window_keys = set()
        if ratio > self.cfg.max_reject_ratio and broad:
            self._stop(topic, partition, f"{ratio:.0%} of the last {self.cfg.window} messages, "
                       f"from {self.cfg.min_keys}+ keys, were rejected (limit "
                       f"{self.cfg.max_reject_ratio:.0%})", last_reason)

    @staticmethod
    def _stop(topic: str, partition: int, what: str, reason: str) -> None:
        raise DeadLetterBrakeError(
            f"dead-letter brake on {topic}[{partition}]: {what}; last reason: {reason}. The input is "
            "probably not twinguard telemetry (wrong topic, serializer or schema version): fix the "
            "producer or the [topics] config, or raise [brake] limits.")


def _track_key(key: bytes | None) -> bytes:
    """What the tables hold for a key: itself if short, else its sha256 (None -> b'')."""
    if key is None:
        return b""
    return key if len(key) <= KEY_BYTES else b"sha256:" + hashlib.sha256(key).digest()


def _printable(key: bytes | None) -> str:
    """A key for logs and reasons: quoted with non-printables escaped (repr), at most ~64 characters."""
    if key is None:
        return "<none>"
    return repr(key[:64].decode("utf-8", "backslashreplace") + ("..." if len(key) > 64 else ""))


def mark_quarantined(errs: list[OutMsg], notes: list[tuple[int, str]]) -> list[OutMsg]:
    """The batch's dead letters with `RejectBrake.observe`'s notes put in front of their reasons."""
    if not notes:
        return errs
    out = list(errs)
    for j, note in notes:
        dl = _dl_decoder.decode(out[j].value)
        reason = f"{note}; {dl.reason}"[:REASON_CHARS]
        out[j] = out[j]._replace(value=_encoder.encode(msgspec.structs.replace(dl, reason=reason)))
    return out
