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


@dataclass(frozen=True)
class RiskConfig:
    """Per-device risk score (operators/risk.py documents the formula)."""

    half_life_h: float = 24.0  # event time after which detections and contacts count half
    detection_half_points: float = 2.0  # decayed severity points at which detections give 0.5
    auth_half_attempts: float = 10.0  # decayed inbound auth attempts at which logins give half
    ports_half_extra: float = 3.0  # destination ports beyond the first at which services give half


@dataclass(frozen=True)
class IntelConfig:
    """Threat intelligence: a JSON-lines file and/or the compacted intel topic."""

    file: str = ""  # JSON lines of schemas.messages.Intel, loaded at start
    read_topic: bool = True  # `twinguard run` follows the intel topic in a background reader
    catch_up_timeout_s: float = 30.0  # wait this long at start for the topic to be read
