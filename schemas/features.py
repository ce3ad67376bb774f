"""Names that leak outside the process (feature columns, threat classes, severities) declared once."""

from __future__ import annotations

import hashlib

from twinguard.schemas.device_types import MAX_SIGNALS

NORMAL = "normal"
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")  # ThreatEvent.severity, ascending
# Threat classes; index = XGBoost class id (0 = normal). A class may have no training examples.
THREAT_CLASSES: tuple[str, ...] = (
    NORMAL,
    "dos",
    "scan",
    "brute_force",
    "exfiltration",
    "false_data_injection",
    "replay",
    "tampering",
    "firmware_tampering",
    # issue #4: channel, behaviour and twin-consistency classes; `anomaly` = a deviation from a
    # learned baseline that no typed detector explains (learning mode, bring-your-own-data replay)
    "cloning",
    "unauthorized_access",
    "hijack",
    "insider",
    "drift",
    "anomaly",
)

_WINDOW_FEATURES = (
    "count_10s", "rate_ratio_10s", "count_60s", "rate_ratio_60s", "count_z_own", "count_z_peer",
    "log_bytes_out_10s", "log_bytes_in_10s", "log_bytes_out_60s", "bytes_out_z_own",
    "bytes_out_z_peer", "bytes_out_ratio", "bytes_in_z_own", "out_in_log_ratio", "conns_10s", "conns_z_own",
    "distinct_ports_10s", "distinct_ports_60s", "auth_fail_10s", "auth_fail_60s",
    "seq_gaps_10s", "replays_10s", "hmac_fail_10s", "unsigned_10s", "src_changes_10s",
    "fw_unknown_10s", "late_10s", "range_viol_frac", "roc_viol_frac", "inv_viol_frac",
    "sig_max_abs_z_own", "sig_max_abs_z_peer", "sig_max_roc_ratio", "sig_min_margin",
    "sig_ewma_dev_max", "baseline_windows",
    # issue #4 channel/identity/profile features (kernels: _observe_identity, _observe_destination,
    # _bursts): source alternations, logins from new addresses/principals, new destinations,
    # clock skew, sequence jumps, hijack evidence, own-profile dimensions off, short-term bursts
    "src_flips_10s", "unauth_logins_10s", "new_dst_10s", "clock_skew_10s", "seq_jumps_10s",
    "hijack_msgs_10s", "profile_dims_off", "rate_burst_ratio", "port_burst", "exfil_msgs_10s",
)
_PER_SIGNAL = ("z_own", "roc_ratio", "pos")

FEATURE_NAMES: tuple[str, ...] = _WINDOW_FEATURES + tuple(
    f"sig{k}_{name}" for name in _PER_SIGNAL for k in range(MAX_SIGNALS)
)
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
N_FEATURES = len(FEATURE_NAMES)
# Models record this hash; a model built for other features is refused at load.
FEATURE_SCHEMA = hashlib.sha256(",".join(FEATURE_NAMES).encode()).hexdigest()[:16]
