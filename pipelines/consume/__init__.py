"""Reading twinguard's output topics as typed records: `threats(cfg, ...)` for the threat feed."""

from twinguard.pipelines.consume.threats import ThreatFilter, ThreatReader, threats

__all__ = ["ThreatFilter", "ThreatReader", "threats"]
