"""Settings the operators take (composed into the full config tree by pipelines/config.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineConfig:
    shards: int = 8
    window_ms: int = 10_000
    long_windows: int = 6
    allowed_lateness_ms: int = 2_000
    twin_emit_interval_s: float = 5.0
    max_future_skew_ms: int = 86_400_000
    max_message_bytes: int = 65_536


@dataclass(frozen=True)
class DetectionConfig:
    model_dir: str = ""
    model_threshold: float = 0.8
    alert_cooldown_ms: int = 60_000
    warmup_windows: int = 3
    replay_min: int = 2
    hmac_fail_min: int = 1
    auth_fail_min: int = 8
    distinct_ports_min: int = 20
    rate_ratio_min: float = 5.0
    exfil_ratio_min: float = 8.0
    require_signature: bool = True
    anomaly_z: float = 5.0


@dataclass(frozen=True)
class ResponseConfig:
    dry_run: bool = True
