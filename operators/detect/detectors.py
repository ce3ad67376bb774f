"""Deterministic detectors over closed-window feature rows, vectorised over the whole batch.

Each detector is an honest, documented threshold on one or two window features (thresholds live in
DetectionConfig); it names the threat class it indicates and explains itself in words. The rows they
read are the features, optionally followed by the multivariate model's verdicts (the engine's
`Windows.evidence`); without those columns the `multivariate` detector never fires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect import multivariate as MV
from twinguard.operators.detect.anomaly import THRESHOLD_SCORE, anomaly_score, deviation
from twinguard.operators.settings import DetectionConfig
from twinguard.schemas.features import FEATURE_INDEX as FI
from twinguard.schemas.features import N_FEATURES

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Detector:
    name: str
    threat: str
    fires: Callable[[F64, DetectionConfig], Mask]
    explain: Callable[[F64], str]
    # an explanation that names the device's signals (when the numbers alone would say "signal 3")
    explain_signals: Callable[[F64, Sequence[str]], str] | None = None

    def describe(self, row: F64, signals: Sequence[str]) -> str:
        """Why the detector fired on this evidence row, in words."""
        if self.explain_signals is not None:
            return self.explain_signals(row, signals)
        return self.explain(row)


def _col(x: F64, name: str) -> F64:
    return x[:, FI[name]]


def _physics(x: F64, _: DetectionConfig) -> Mask:
    return (_col(x, "range_viol_frac") + _col(x, "roc_viol_frac") + _col(x, "inv_viol_frac")) > 0


def _physics_why(r: F64) -> str:
    parts = [f"{100 * r[FI[k]]:.0f}% of readings {what}" for k, what in (
        ("range_viol_frac", "out of range"), ("roc_viol_frac", "changing impossibly fast"),
        ("inv_viol_frac", "breaking a signal invariant")) if r[FI[k]] > 0]
    return "; ".join(parts) + f" (max rate-of-change ratio {r[FI['sig_max_roc_ratio']]:.1f})"


def _unsigned(x: F64, cfg: DetectionConfig) -> Mask:
    bad = _col(x, "hmac_fail_10s") >= cfg.hmac_fail_min
    return bad | (_col(x, "unsigned_10s") >= 1) if cfg.require_signature else bad


def _cloning(x: F64, cfg: DetectionConfig) -> Mask:
    return ((_col(x, "src_flips_10s") >= cfg.clone_flips_min)
            | (_col(x, "seq_jumps_10s") >= cfg.clone_seq_jumps_min))


def _cloning_why(r: F64) -> str:
    return (f"one device id from alternating source addresses ({r[FI['src_flips_10s']]:.0f} "
            f"A-B-A flips) and {r[FI['seq_jumps_10s']]:.0f} sequence counter jumps")


def _baseline_deviation(x: F64, cfg: DetectionConfig) -> Mask:
    warm = _col(x, "baseline_windows") >= cfg.warmup_windows
    return warm & (anomaly_score(x, cfg.anomaly_z, cfg.anomaly_volume_z) >= THRESHOLD_SCORE)


def _deviation_why(r: F64) -> str:
    return (f"{deviation(r[None, :])[0]:.1f} sigmas from both the device's own and its type's "
            f"learned baselines (count z {r[FI['count_z_own']]:.1f}/{r[FI['count_z_peer']]:.1f}, "
            f"bytes out z {r[FI['bytes_out_z_own']]:.1f}/{r[FI['bytes_out_z_peer']]:.1f}, "
            f"max signal z {r[FI['sig_max_abs_z_own']]:.1f}/{r[FI['sig_max_abs_z_peer']]:.1f})")


def _multivariate(x: F64, _: DetectionConfig) -> Mask:
    if x.shape[1] < N_FEATURES + MV.N_OUT:
        return np.zeros(x.shape[0], dtype=bool)
    return x[:, N_FEATURES + MV.O_ALARM] > 0


def _multivariate_why(r: F64, signals: Sequence[str] = ()) -> str:
    return MV.explain(r[N_FEATURES:], signals)


DETECTORS: tuple[Detector, ...] = (
    Detector("hmac", "tampering", _unsigned,
             lambda r: f"{r[FI['hmac_fail_10s']]:.0f} messages with a bad HMAC, "
                       f"{r[FI['unsigned_10s']]:.0f} unsigned"),
    Detector("sequence_replay", "replay",
             lambda x, c: _col(x, "replays_10s") >= c.replay_min,
             lambda r: f"{r[FI['replays_10s']]:.0f} already-seen sequence numbers with old timestamps"),
    Detector("firmware_allowlist", "firmware_tampering",
             lambda x, c: _col(x, "fw_unknown_10s") >= 1,
             lambda r: f"{r[FI['fw_unknown_10s']]:.0f} messages report firmware not on the allowlist"),
    Detector("physics", "false_data_injection", _physics, _physics_why),
    # before cloning: a foreign login session alternates addresses too, the login is more specific
    Detector("new_login_source", "unauthorized_access",
             lambda x, c: _col(x, "unauth_logins_10s") >= c.unauth_logins_min,
             lambda r: f"{r[FI['unauth_logins_10s']]:.0f} successful logins from a source address "
                       "or by a principal never seen for this device"),
    Detector("cloning", "cloning", _cloning, _cloning_why),
    Detector("exfil_volume", "exfiltration",
             lambda x, c: (_col(x, "bytes_out_ratio") >= c.exfil_ratio_min)
             | (_col(x, "exfil_msgs_10s") >= 2),
             lambda r: f"bytes out per message {r[FI['bytes_out_ratio']]:.1f}x the learned baseline "
                       f"(exfiltration evidence {r[FI['exfil_msgs_10s']]:.0f}: messages over it, "
                       "counted twice when sent to a new destination)"),
    Detector("hijack", "hijack",
             lambda x, c: _col(x, "hijack_msgs_10s") >= c.hijack_msgs_min,
             lambda r: f"{r[FI['hijack_msgs_10s']]:.0f} messages to one new destination with bytes "
                       f"in and out off the learned profile ({r[FI['profile_dims_off']]:.0f} "
                       "profile dimensions off)"),
    Detector("auth_failures", "brute_force",
             lambda x, c: _col(x, "auth_fail_10s") >= c.auth_fail_min,
             lambda r: f"{r[FI['auth_fail_10s']]:.0f} authentication failures in 10 s"),
    Detector("port_scan", "scan",
             lambda x, c: (_col(x, "distinct_ports_10s") >= c.distinct_ports_min)
             | (_col(x, "port_burst") >= c.port_burst_min),
             lambda r: f"~{r[FI['distinct_ports_10s']]:.0f} distinct destination ports in 10 s "
                       f"({r[FI['port_burst']]:.1f} new in the last ~2 s)"),
    Detector("flood", "dos",
             lambda x, c: (_col(x, "rate_ratio_10s") >= c.rate_ratio_min)
             | (_col(x, "rate_burst_ratio") >= c.rate_ratio_min),
             lambda r: f"message rate {r[FI['rate_ratio_10s']]:.1f}x the device type's nominal rate "
                       f"({r[FI['rate_burst_ratio']]:.1f}x over the last second)"),
    Detector("clock_skew", "replay",
             lambda x, c: _col(x, "clock_skew_10s") >= 1,
             lambda r: f"{r[FI['clock_skew_10s']]:.0f} authentic in-sequence messages far behind "
                       "their partition's event time (held back and delivered late) or far ahead "
                       "of the wall clock"),
    Detector("new_destination", "anomaly",
             lambda x, c: _col(x, "new_dst_10s") >= c.new_dst_min,
             lambda r: f"{r[FI['new_dst_10s']]:.0f} messages to destinations (address, port) never "
                       "used while the device's profile was learned"),
    # learning mode: an untyped deviation from the learned baselines (operators/detect/anomaly.py); last,
    # so any typed detector or a confident model names the threat instead
    Detector("baseline_deviation", "anomaly", _baseline_deviation, _deviation_why),
    # learning mode across signals: the device's learned relationships broken (multivariate.py)
    Detector("multivariate", "anomaly", _multivariate, _multivariate_why, _multivariate_why),
)
# When several detectors fire and the model does not settle it, the earlier class wins: integrity
# evidence is certain, floods are often a side effect of the others, `anomaly` is the fallback.
PRIORITY: tuple[str, ...] = tuple(sorted((d.threat for d in DETECTORS), key=lambda c: c == "anomaly"))


def run_detectors(x: F64, cfg: DetectionConfig) -> Mask:
    """[rows, detectors] boolean matrix of which detector fired on which window."""
    if x.shape[0] == 0:
        return np.zeros((0, len(DETECTORS)), dtype=bool)
    return np.column_stack([d.fires(x, cfg) for d in DETECTORS])
