"""`[metrics]`: the Prometheus endpoint of a dataflow process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    host: str = "127.0.0.1"  # localhost unless configured: the endpoint has no authentication
    port: int = 9464  # 0 = off; `python -m bytewax.run -i N` adds N (one port per process)
