"""Settings the operators take (composed into the full config tree by pipelines/config.py)."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from twinguard.operators.intel.table import IntelLimits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PipelineConfig:
    shards: int = 8
    window_ms: int = 10_000
    long_windows: int = 6
    allowed_lateness_ms: int = 2_000
    twin_emit_interval_s: float = 5.0
    max_future_skew_ms: int = 86_400_000
    max_message_bytes: int = 65_536
    max_mark_lead_ms: int = 1_000  # live runs: a partition's event-time mark <= wall clock + this
    idle_tick_ms: int = 1_000  # a shard without input closes due windows from the wall clock this often


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
    clone_flips_min: int = 2
    clone_seq_jumps_min: int = 2
    clock_skew_ms: int = 30_000
    unauth_logins_min: int = 1
    hijack_msgs_min: int = 1
    new_dst_min: int = 1
    port_burst_min: float = 5.0
    anomaly_z: float = 5.0
    anomaly_volume_z: float = 10.0
    multivariate_windows: int = 0  # live: off until it holds on simulated fleets (README)
    multivariate_fa_rate: float = 0.0001
    multivariate_limits: str = "spot"  # quantile | spot | dspot (operators/detect/spot.py)
    multivariate_time_context: bool = False  # time of day / week columns where they matter (README)


@dataclass(frozen=True)
class ResponseConfig:
    dry_run: bool = True
    # comma-separated addresses/CIDRs a block never aims at: the fleet's servers, brokers, gateways
    protected_networks: str = ""

    def __post_init__(self) -> None:
        self.networks()  # a typo fails at start, naming the entry

    def networks(self) -> tuple[Network, ...]:
        return _networks(self.protected_networks)


@functools.lru_cache(maxsize=16)
def _networks(spec: str) -> tuple[Network, ...]:
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError as e:
                raise ValueError(f"response.protected_networks: {part!r} is not an address or "
                                 f"network ({e})") from None
    return tuple(out)


@dataclass(frozen=True)
class ActivityConfig:
    """Operator behaviour (insider) thresholds; drift deadlines live in the device types' [control]."""

    dangerous_actions: str = "firmware_update,disable_safety,factory_reset"  # comma-separated
    burst_window_ms: int = 10_000
    burst_min: int = 6             # commands in the window before a burst can be called
    burst_ratio: float = 5.0       # ... and this many times the user's own learned rate
    foreign_window_ms: int = 600_000
    foreign_min: int = 3           # distinct devices outside the user's usual set in the window
    learn_commands: int = 20       # commands in a row without a new device: the device set is learned
    off_hours_share: float = 0.02  # hour (+-1 h) holding less than this share of the user's history
    hours_min_commands: int = 50   # ... once the profile has this many commands
    hours_min_span_ms: int = 172_800_000  # ... spanning at least two days
    alert_cooldown_ms: int = 60_000  # same user + same reason at most this often
    command_grace_ms: int = 1_000  # drift verdicts wait this much device event time for a late command
    pending_command_ttl_s: float = 600.0  # a command for a device without a twin waits this long
    max_pending_commands: int = 10_000  # ... and at most this many per shard (oldest go first)

    def dangerous(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.dangerous_actions.split(",") if a.strip())


@dataclass(frozen=True)
class RiskConfig:
    """Per-device risk score (operators/twin/risk.py documents the formula)."""

    half_life_h: float = 24.0  # event time after which detections and contacts count half
    detection_half_points: float = 2.0  # decayed severity points at which detections give 0.5
    auth_half_attempts: float = 10.0  # decayed inbound auth attempts at which logins give half
    ports_half_extra: float = 3.0  # destination ports beyond the first at which services give half


@dataclass(frozen=True)
class IntelConfig:
    """Threat intelligence: a JSON-lines file and/or the compacted intel topic."""

    file: str = ""  # JSON lines of twinguard.schemas.messages.Intel, loaded at start
    read_topic: bool = True  # `twinguard run` follows the intel topic in a background reader
    catch_up_timeout_s: float = 30.0  # wait this long at start for the topic to be read
    max_record_bytes: int = 4096  # a longer intel record is dead-lettered
    max_note_chars: int = 500  # a record with a longer note is dead-lettered
    allow_broad_cidrs: bool = False  # accept IPv4 CIDRs shorter than /8 and IPv6 shorter than /32

    def limits(self) -> IntelLimits:
        return IntelLimits(self.max_record_bytes, self.max_note_chars, self.allow_broad_cidrs)
