"""`[feedback]`: how the dataflow follows analyst verdicts (twinguard.feedback)."""

from __future__ import annotations

from dataclasses import dataclass

DAY_S = 86400.0


@dataclass(frozen=True)
class FeedbackConfig:
    read_topic: bool = True  # `twinguard run` follows the feedback topic in a background reader
    catch_up_timeout_s: float = 30.0  # wait this long at start for the topic to be read
    default_ttl_s: float = DAY_S  # a verdict without --ttl suppresses this long
    max_ttl_s: float = 30 * DAY_S  # a longer ttl is refused (dead letter): suppressions must end
