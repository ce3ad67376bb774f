"""Dead-letter brake: when a partition's input is mostly garbage, the deploy is broken, not the data.

Stop loudly instead of dead-lettering a whole topic (a wrong topic, wrong serializer, wrong schema).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DeadLetterBrakeError(RuntimeError):
    """Too many rejects on one partition; the message says how many and what to check."""


@dataclass(frozen=True)
class BrakeConfig:
    max_reject_ratio: float = 0.5  # over each count window of `window` messages
    window: int = 10_000
    max_consecutive: int = 5_000  # rejects in a row, regardless of the ratio
    enabled: bool = True


@dataclass
class _Counts:
    seen: int = 0
    rejected: int = 0
    run: int = 0


@dataclass
class RejectBrake:
    cfg: BrakeConfig
    counts: dict[tuple[str, int], _Counts] = field(default_factory=dict)

    def observe(self, topic: str, partition: int, rejected: list[bool], last_reason: str) -> None:
        """Account a batch's accept/reject flags (in order); raise when a limit is passed."""
        if not self.cfg.enabled or not rejected:
            return
        c = self.counts.setdefault((topic, partition), _Counts())
        for bad in rejected:
            c.run = c.run + 1 if bad else 0
            if c.run >= self.cfg.max_consecutive:
                self._stop(topic, partition, f"{c.run} messages in a row were rejected", last_reason)
        c.seen += len(rejected)
        c.rejected += sum(rejected)
        if c.seen >= self.cfg.window:
            ratio = c.rejected / c.seen
            c.seen = c.rejected = 0
            if ratio > self.cfg.max_reject_ratio:
                self._stop(topic, partition, f"{ratio:.0%} of the last {self.cfg.window} messages "
                           f"were rejected (limit {self.cfg.max_reject_ratio:.0%})", last_reason)

    @staticmethod
    def _stop(topic: str, partition: int, what: str, reason: str) -> None:
        raise DeadLetterBrakeError(
            f"dead-letter brake on {topic}[{partition}]: {what}; last reason: {reason}. The input is "
            "probably not twinguard telemetry (wrong topic, serializer or schema version): fix the "
            "producer or the [topics] config, or raise [brake] limits.")
