"""Reading twinguard's output topics as typed records: `threats(cfg, ...)` for the threat feed.

The names load on first use (PEP 562), so the command line can register `twinguard threats` without
importing the Kafka client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twinguard.pipelines.consume.reader import ThreatFilter, ThreatReader, threats

__all__ = ["ThreatFilter", "ThreatReader", "threats"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from twinguard.pipelines.consume import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
