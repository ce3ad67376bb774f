"""Numba window kernels: per-device tumbling windows, long windows, own and peer baselines.

All kernels take arrays and scalars only and update the TwinStore arrays in place; closed windows are
written as feature rows (columns = twinguard.schemas.features.FEATURE_NAMES) into caller-provided buffers.
A buffer wider than N_FEATURES also receives each window's signal means after the features (NaN for a
signal without readings): the multivariate model (operators/detect/multivariate.py) learns from them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from twinguard.schemas.features import FEATURE_INDEX as _FI
from twinguard.schemas.features import N_FEATURES

# istate columns (int64 per device slot)
I_TYPE, I_LAST_SEQ, I_LAST_TS, I_LAST_SRC, I_WIN_START, I_WIN_PART = 0, 1, 2, 3, 4, 5
I_FIRST_OFF, I_LAST_OFF, I_BASE_N, I_EVENTS, I_WINDOWS, I_DIRTY, I_RING_POS = 6, 7, 8, 9, 10, 11, 12
I_CLOSED_END, I_EARLY = 13, 14  # I_EARLY: bitmask of the early-fire conditions already fired
# identity/profile state: the address before the last change, the last new destination, the time of
# the burst counters, and learned sets (hashed bitmaps, learned during warm-up) of destinations
# (128 bits), source addresses and login principals (64 bits each)
I_PREV_SRC, I_LAST_NEWDST, I_BURST_TS, I_KDST0, I_KDST1, I_KSRC, I_KPRINC = 15, 16, 17, 18, 19, 20, 21
I_PEND_LOGIN, I_PEND_TS = 22, 23  # a login from a new address, and when: judged by what follows
# peer group: 1 + the peer row of the device's (type, firmware) group; 0 = none (firmware unknown)
I_PEER = 24
N_ISTATE = 25
# per-event address verdicts (update_batch's out_peer): a source the device does not use (after
# warm-up), a destination it never used, one it uses (its warm-up destinations included)
PEER_FOREIGN_SRC, PEER_NEW_DST, PEER_USUAL_DST = 1, 2, 4
PEND_LOGIN_MS = 30_000  # a login address the device neither leaves nor keeps within this is dropped
# window rows: slot, window start, window end, partition, first offset, last offset, final (0 = an
# early row: the window so far, written the moment a deterministic detector's threshold is crossed)
N_META = 7
# early-fire thresholds, in this order (from DetectionConfig)
T_REPLAY, T_AUTH, T_PORTS, T_RATE, T_EXFIL, T_HMAC = 0, 1, 2, 3, 4, 5
T_FLIPS, T_JUMPS, T_SKEW, T_UNAUTH, T_HIJACK, T_PORT_BURST = 6, 7, 8, 9, 10, 11
# window accumulator columns
A_COUNT, A_BIN, A_BOUT, A_CONNS, A_AUTH, A_GAPS, A_REPLAYS, A_HMAC = 0, 1, 2, 3, 4, 5, 6, 7
A_UNSIGNED, A_SRCCHG, A_FW, A_RANGE, A_ROC, A_INV, A_LATE, A_TRUSTED = 8, 9, 10, 11, 12, 13, 14, 15
A_FLIPS, A_UNAUTH, A_NEWDST, A_SKEW, A_JUMPS, A_HIJACK, A_EXFIL = 16, 17, 18, 19, 20, 21, 22
N_ACC_WINDOW = 23  # columns above reset with each window; the burst counters below carry over
A_RATE_BURST, A_PORT_BURST = 23, 24  # exponentially decayed counts of messages / new ports
N_ACC = 25
RATE_TAU_MS, PORT_TAU_MS = 2_000.0, 2_000.0
BURST_MIN_MSGS = 6.0  # fewer messages than this in a burst say nothing about a device's rate
# per-signal accumulator
S_N, S_SUM, S_SUMSQ, S_MIN, S_MAX, S_ROC = 0, 1, 2, 3, 4, 5
N_SACC = 6
# long-window ring columns
R_COUNT, R_BOUT, R_BIN, R_AUTH = 0, 1, 2, 3
N_RING = 4
# baseline quantities: count, bytes out, bytes in, connections, then one per signal
B_COUNT, B_BOUT, B_BIN, B_CONNS, B_SIG0 = 0, 1, 2, 3, 4
EWMA_ALPHA = 0.3
OWN_ALPHA, PEER_ALPHA = 0.1, 0.02
CLIP_SIGMAS = 4.0
# Peer rows: 0..n_types-1 = every device of a type; further rows = one (type, firmware) group each
# (TwinStore.set_firmware). A device is compared with its firmware group once that group is warm,
# with its whole type until then; clean windows teach both.
PEER_WARM = 10  # a peer baseline needs this many times more windows than one device's
Z_CAP = 50.0  # beyond this a z-score says nothing more, and extremes only invite overfitting
PORT_BITS = 128
BASE_N_CAP = 100  # the baseline_windows feature saturates here (warmup_windows must not exceed it)

F_COUNT, F_RATE, F_COUNT60, F_RATE60 = _FI["count_10s"], _FI["rate_ratio_10s"], _FI["count_60s"], _FI["rate_ratio_60s"]
F_COUNT_Z, F_COUNT_ZP = _FI["count_z_own"], _FI["count_z_peer"]
F_BOUT, F_BIN, F_BOUT60 = _FI["log_bytes_out_10s"], _FI["log_bytes_in_10s"], _FI["log_bytes_out_60s"]
F_BOUT_Z, F_BOUT_ZP, F_BOUT_RATIO = _FI["bytes_out_z_own"], _FI["bytes_out_z_peer"], _FI["bytes_out_ratio"]
F_BIN_Z, F_OUTIN, F_CONNS, F_CONNS_Z = _FI["bytes_in_z_own"], _FI["out_in_log_ratio"], _FI["conns_10s"], _FI["conns_z_own"]
F_PORTS, F_PORTS60 = _FI["distinct_ports_10s"], _FI["distinct_ports_60s"]
F_AUTH, F_AUTH60, F_GAPS, F_REPLAYS = _FI["auth_fail_10s"], _FI["auth_fail_60s"], _FI["seq_gaps_10s"], _FI["replays_10s"]
F_HMAC, F_UNSIGNED, F_SRCCHG, F_FW = _FI["hmac_fail_10s"], _FI["unsigned_10s"], _FI["src_changes_10s"], _FI["fw_unknown_10s"]
F_LATE, F_RANGE, F_ROC, F_INV = _FI["late_10s"], _FI["range_viol_frac"], _FI["roc_viol_frac"], _FI["inv_viol_frac"]
F_SZ, F_SZP, F_SROC = _FI["sig_max_abs_z_own"], _FI["sig_max_abs_z_peer"], _FI["sig_max_roc_ratio"]
F_SMARGIN, F_SEWMA, F_BASEN = _FI["sig_min_margin"], _FI["sig_ewma_dev_max"], _FI["baseline_windows"]
F_SIG_Z, F_SIG_ROC, F_SIG_POS = _FI["sig0_z_own"], _FI["sig0_roc_ratio"], _FI["sig0_pos"]
F_FLIPS, F_UNAUTH, F_NEWDST, F_SKEW = _FI["src_flips_10s"], _FI["unauth_logins_10s"], _FI["new_dst_10s"], _FI["clock_skew_10s"]
F_JUMPS, F_HIJACK, F_DIMS = _FI["seq_jumps_10s"], _FI["hijack_msgs_10s"], _FI["profile_dims_off"]
F_RATE_BURST, F_PORT_BURST, F_EXFIL = _FI["rate_burst_ratio"], _FI["port_burst"], _FI["exfil_msgs_10s"]
# per-signal columns exist for the first few signals only; the sig_* aggregates cover every signal
N_SIG_COLS = F_SIG_ROC - F_SIG_Z
# floor of a z-score for a signal without a physical range (a replayed table): a share of its
# type's slow (peer) spread, so a near-constant signal's z stays finite but a signal that never
# moved while learning still stands out when it does
UNBOUNDED_FLOOR = 0.25


@njit(nogil=True, cache=True)
def _popcount(x: np.uint64) -> int:
    n = 0
    while x:
        x &= x - np.uint64(1)
        n += 1
    return n


@njit(nogil=True, cache=True)
def distinct_estimate(words: np.ndarray) -> float:
    """Linear-counting estimate of distinct values hashed into a PORT_BITS-bit bitmap."""
    ones = 0
    for w in range(words.shape[0]):
        ones += _popcount(words[w])
    zeros = PORT_BITS - ones
    if zeros == 0:
        return PORT_BITS * math.log(PORT_BITS)
    return PORT_BITS * math.log(PORT_BITS / zeros)


@njit(nogil=True, cache=True)
def _z(x: float, mean: float, var: float, floor: float, n: int, warm: int) -> float:
    if n < warm:
        return 0.0
    z = (x - mean) / (math.sqrt(max(var, 0.0)) + floor)
    return min(max(z, -Z_CAP), Z_CAP)


@njit(nogil=True, cache=True)
def _learn(stat: np.ndarray, x: float, n: int, alpha_min: float, floor: float, warm: int,
           scale: bool) -> None:
    """Robust EWMA mean/variance update in place (stat = [mean, var]); clips outliers once warm."""
    if n >= warm:
        bound = CLIP_SIGMAS * (math.sqrt(max(stat[1], 0.0)) + floor)
        x = min(max(x, stat[0] - bound), stat[0] + bound)
    elif n >= 1 and scale:  # still learning: one window may move a volume at most 4x
        x = min(max(x, stat[0] / 4.0), stat[0] * 4.0 + floor)
    a = max(1.0 / (n + 1), alpha_min)
    d = x - stat[0]
    stat[0] += a * d
    stat[1] = (1.0 - a) * (stat[1] + a * d * d)


@njit(nogil=True, cache=True)
def _floors(t: int, zfl: np.ndarray, b: int, mean: float, peer: np.ndarray) -> float:
    if b == B_COUNT or b == B_CONNS:
        return 1.0 + 0.1 * abs(mean)
    if b == B_BOUT or b == B_BIN:
        return 50.0 + 0.1 * abs(mean)
    fl = zfl[t, b - B_SIG0]  # DeviceTypeTable.zfloor: a share of the physical range
    if math.isfinite(fl):
        return fl
    return UNBOUNDED_FLOOR * math.sqrt(max(peer[t, b, 1], 0.0)) + 1e-9 * (1.0 + abs(mean))


@njit(nogil=True, cache=True)
def close_window(s, ws, window_ms, istate, acc, sacc, ewma, ports, ring, ring_ws, ring_ports,
                 base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm, out_feat, out_meta, r):
    """Write slot s's window [ws, ws+window_ms) as feature row r, learn baselines, reset it."""
    window_row(s, ws, ws + window_ms, window_ms, istate, acc, sacc, ewma, ports, ring, ring_ws,
               ring_ports, base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm, out_feat, out_meta,
               r, 1)
    _finish_window(s, ws, window_ms, istate, acc, sacc, ports, ring, ring_ws, ring_ports, base,
                   peer, peer_n, lo, hi, zfl, nsig, warm)


@njit(nogil=True, cache=True)
def window_row(s, ws, we, window_ms, istate, acc, sacc, ewma, ports, ring, ring_ws, ring_ports,
               base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm, out_feat, out_meta, r, final):
    """Feature row r for slot s's window so far (rates always per full window); state untouched."""
    t = istate[s, I_TYPE]
    f = out_feat[r]
    f[:] = 0.0
    win_s = window_ms / 1000.0
    count = acc[s, A_COUNT]
    base_n = istate[s, I_BASE_N]
    g = peer_row(s, istate, peer_n, warm)
    pn = peer_n[g]
    # long window = this window + ring entries within (ring length) windows before it
    rl = ring.shape[1]
    c60, bout60, auth60 = count, acc[s, A_BOUT], acc[s, A_AUTH]
    p60 = ports[s].copy()
    span = 1
    for j in range(rl):
        if ring_ws[s, j] >= ws - rl * window_ms and ring_ws[s, j] < ws and ring_ws[s, j] >= 0:
            c60 += ring[s, j, R_COUNT]
            bout60 += ring[s, j, R_BOUT]
            auth60 += ring[s, j, R_AUTH]
            p60 |= ring_ports[s, j]
            span += 1
    hz = nominal_hz[t]
    f[F_COUNT] = count
    f[F_RATE] = count / (win_s * hz)
    f[F_COUNT60] = c60
    f[F_RATE60] = c60 / (span * win_s * hz)
    qs = np.empty(B_SIG0 + lo.shape[1])
    qs[B_COUNT], qs[B_BOUT], qs[B_BIN], qs[B_CONNS] = count, acc[s, A_BOUT], acc[s, A_BIN], acc[s, A_CONNS]
    zo = np.zeros(qs.shape[0])
    zp = np.zeros(qs.shape[0])
    for b in range(B_SIG0):
        zo[b] = _z(qs[b], base[s, b, 0], base[s, b, 1], _floors(t, zfl, b, base[s, b, 0], peer), base_n, warm)
        zp[b] = _z(qs[b], peer[g, b, 0], peer[g, b, 1], _floors(t, zfl, b, peer[g, b, 0], peer), pn, PEER_WARM * warm)
    f[F_COUNT_Z], f[F_COUNT_ZP] = zo[B_COUNT], zp[B_COUNT]
    f[F_BOUT] = math.log1p(acc[s, A_BOUT])
    f[F_BIN] = math.log1p(acc[s, A_BIN])
    f[F_BOUT60] = math.log1p(bout60)
    f[F_BOUT_Z], f[F_BOUT_ZP], f[F_BIN_Z] = zo[B_BOUT], zp[B_BOUT], zo[B_BIN]
    # bytes out per message against history (one clean window of its own, or a few of its type):
    # per message, so a flood of ordinary messages is not mistaken for a leak
    ref = _bytes_per_msg_ref(s, g, base_n, base, peer, pn, warm)
    f[F_BOUT_RATIO] = acc[s, A_BOUT] / max(count, 1.0) / ref if ref > 0.0 else 1.0
    f[F_OUTIN] = math.log1p(acc[s, A_BOUT]) - math.log1p(acc[s, A_BIN])
    f[F_CONNS], f[F_CONNS_Z] = acc[s, A_CONNS], zo[B_CONNS]
    f[F_PORTS] = distinct_estimate(ports[s])
    f[F_PORTS60] = distinct_estimate(p60)
    f[F_AUTH], f[F_AUTH60] = acc[s, A_AUTH], auth60
    f[F_GAPS], f[F_REPLAYS], f[F_HMAC] = acc[s, A_GAPS], acc[s, A_REPLAYS], acc[s, A_HMAC]
    f[F_UNSIGNED], f[F_SRCCHG], f[F_FW], f[F_LATE] = acc[s, A_UNSIGNED], acc[s, A_SRCCHG], acc[s, A_FW], acc[s, A_LATE]
    trusted = max(acc[s, A_TRUSTED], 1.0)
    f[F_RANGE] = acc[s, A_RANGE] / trusted
    f[F_ROC] = acc[s, A_ROC] / trusted
    f[F_INV] = acc[s, A_INV] / trusted
    f[F_BASEN] = min(base_n, BASE_N_CAP)
    margin = 1.0
    f[N_FEATURES:] = math.nan  # window means: NaN = no such signal, or no reading of it
    for k in range(nsig[t]):
        n = sacc[s, k, S_N]
        if n == 0:
            continue
        b = B_SIG0 + k
        mean = sacc[s, k, S_SUM] / n
        qs[b] = mean
        span_k = hi[t, k] - lo[t, k]
        fl = _floors(t, zfl, b, 0.0, peer)
        zo[b] = _z(mean, base[s, b, 0], base[s, b, 1], fl, base_n, warm)
        zp[b] = _z(mean, peer[g, b, 0], peer[g, b, 1], fl, pn, PEER_WARM * warm)
        bounded = math.isfinite(span_k)  # a replayed table's signals have no physical range
        if k < N_SIG_COLS:
            f[F_SIG_Z + k] = zo[b]
            f[F_SIG_ROC + k] = sacc[s, k, S_ROC]
            f[F_SIG_POS + k] = (mean - lo[t, k]) / span_k if bounded else 0.0
        f[F_SZ] = max(f[F_SZ], abs(zo[b]))
        f[F_SZP] = max(f[F_SZP], abs(zp[b]))
        f[F_SROC] = max(f[F_SROC], sacc[s, k, S_ROC])
        if f.shape[0] > N_FEATURES + k:
            f[N_FEATURES + k] = mean
        if bounded:
            margin = min(margin, (sacc[s, k, S_MIN] - lo[t, k]) / span_k, (hi[t, k] - sacc[s, k, S_MAX]) / span_k)
        if base_n >= warm:
            dev = abs(ewma[s, k] - base[s, b, 0])
            f[F_SEWMA] = max(f[F_SEWMA], dev / (math.sqrt(max(base[s, b, 1], 0.0)) + fl))
    f[F_SMARGIN] = margin
    f[F_FLIPS], f[F_UNAUTH], f[F_NEWDST] = acc[s, A_FLIPS], acc[s, A_UNAUTH], acc[s, A_NEWDST]
    f[F_SKEW], f[F_JUMPS], f[F_HIJACK] = acc[s, A_SKEW], acc[s, A_JUMPS], acc[s, A_HIJACK]
    f[F_RATE_BURST] = _rate_burst_ratio(acc[s, A_RATE_BURST], hz)
    f[F_PORT_BURST] = acc[s, A_PORT_BURST]
    f[F_EXFIL] = acc[s, A_EXFIL]
    f[F_DIMS] = _profile_dims_off(s, count, acc, base, base_n, warm, zo[B_COUNT], f[F_SZ])
    out_meta[r, 0], out_meta[r, 1], out_meta[r, 2] = s, ws, we
    out_meta[r, 3], out_meta[r, 4], out_meta[r, 5] = istate[s, I_WIN_PART], istate[s, I_FIRST_OFF], istate[s, I_LAST_OFF]
    out_meta[r, 6] = final


@njit(nogil=True, cache=True)
def _finish_window(s, ws, window_ms, istate, acc, sacc, ports, ring, ring_ws, ring_ports, base,
                   peer, peer_n, lo, hi, zfl, nsig, warm):
    """Learn baselines from a clean closed window, push it into the ring, reset the slot."""
    t = istate[s, I_TYPE]
    g = istate[s, I_PEER] - 1  # the firmware group, learning even while the type row is in use
    base_n = istate[s, I_BASE_N]
    count = acc[s, A_COUNT]
    qs = np.empty(B_SIG0 + lo.shape[1])
    qs[B_COUNT], qs[B_BOUT], qs[B_BIN], qs[B_CONNS] = count, acc[s, A_BOUT], acc[s, A_BIN], acc[s, A_CONNS]
    for k in range(nsig[t]):
        if sacc[s, k, S_N] > 0:
            qs[B_SIG0 + k] = sacc[s, k, S_SUM] / sacc[s, k, S_N]
    # learn from complete, clean windows only: the first window is partial, violations would poison
    clean = acc[s, A_HMAC] + acc[s, A_REPLAYS] + acc[s, A_FW] + acc[s, A_RANGE] + acc[s, A_ROC] + acc[s, A_INV] == 0
    if istate[s, I_WINDOWS] > 0 and clean:
        for b in range(qs.shape[0]):
            if b >= B_SIG0 and (b - B_SIG0 >= nsig[t] or sacc[s, b - B_SIG0, S_N] == 0):
                continue
            vol = b < B_SIG0
            _learn(base[s, b], qs[b], base_n, OWN_ALPHA, _floors(t, zfl, b, base[s, b, 0], peer), warm, vol)
            _learn(peer[t, b], qs[b], peer_n[t], PEER_ALPHA, _floors(t, zfl, b, peer[t, b, 0], peer), PEER_WARM * warm, vol)
            if g >= 0:
                _learn(peer[g, b], qs[b], peer_n[g], PEER_ALPHA, _floors(t, zfl, b, peer[g, b, 0], peer), PEER_WARM * warm, vol)
        istate[s, I_BASE_N] += 1
        peer_n[t] += 1
        if g >= 0:
            peer_n[g] += 1
    # push into the long-window ring and reset the accumulators
    pos = istate[s, I_RING_POS]
    ring[s, pos, R_COUNT], ring[s, pos, R_BOUT] = count, acc[s, A_BOUT]
    ring[s, pos, R_BIN], ring[s, pos, R_AUTH] = acc[s, A_BIN], acc[s, A_AUTH]
    ring_ws[s, pos] = ws
    ring_ports[s, pos] = ports[s]
    istate[s, I_RING_POS] = (pos + 1) % ring.shape[1]
    istate[s, I_WINDOWS] += 1
    istate[s, I_WIN_START] = -1
    istate[s, I_CLOSED_END] = ws + window_ms
    istate[s, I_EARLY] = 0
    acc[s, :N_ACC_WINDOW] = 0.0
    ports[s, :] = 0
    for k in range(sacc.shape[1]):
        sacc[s, k, S_N], sacc[s, k, S_SUM], sacc[s, k, S_SUMSQ], sacc[s, k, S_ROC] = 0.0, 0.0, 0.0, 0.0
        sacc[s, k, S_MIN], sacc[s, k, S_MAX] = np.inf, -np.inf




@njit(nogil=True, cache=True)
def _roc_ratio(rate: float, rmin: float, rmax: float) -> float:
    """|rate| relative to the allowed limit in its direction; > 1 means physically impossible."""
    if rate >= 0.0:
        if rate == 0.0:
            return 0.0
        return rate / rmax if rmax > 0.0 else 1e3
    if rmin < 0.0:
        return rate / rmin
    return 1e3 if rate < -1e-9 else 0.0


@njit(nogil=True, cache=True)
def _invariants_broken(row, t, inv) -> bool:
    for j in range(inv.shape[1]):
        kind = int(inv[t, j, 0])
        if kind == 0:
            continue
        a, b = row[int(inv[t, j, 1])], row[int(inv[t, j, 2])]
        c = row[int(inv[t, j, 3])] if inv[t, j, 3] >= 0 else 1.0
        if math.isnan(a) or math.isnan(b) or math.isnan(c):
            continue
        if kind == 1:
            den = b * c
            if abs(den) >= inv[t, j, 6]:
                ratio = a / den
                if ratio < inv[t, j, 4] or ratio > inv[t, j, 5]:
                    return True
        elif kind == 2 and b < 0.5 and a > inv[t, j, 6]:
            return True
    return False


@njit(nogil=True, cache=True)
def _observe_signals(i, s, t, t_ms, sigv, sacc, last_sig, last_sig_ts, ewma, lo, hi, rmin,
                     rmax, nsig):
    """Fold event i's signals into slot s; returns (out of range, impossible rate of change)."""
    range_bad, roc_bad = False, False
    for k in range(nsig[t]):
        x = sigv[i, k]
        if math.isnan(x):
            continue
        sacc[s, k, S_N] += 1.0
        sacc[s, k, S_SUM] += x
        sacc[s, k, S_SUMSQ] += x * x
        sacc[s, k, S_MIN] = min(sacc[s, k, S_MIN], x)
        sacc[s, k, S_MAX] = max(sacc[s, k, S_MAX], x)
        if x < lo[t, k] or x > hi[t, k]:
            range_bad = True
        prev_ts = last_sig_ts[s, k]
        if prev_ts >= 0 and t_ms > prev_ts:
            ratio = min(_roc_ratio((x - last_sig[s, k]) * 1000.0 / (t_ms - prev_ts), rmin[t, k],
                                   rmax[t, k]), 1e3)
            sacc[s, k, S_ROC] = max(sacc[s, k, S_ROC], ratio)
            roc_bad = roc_bad or ratio > 1.0
            ewma[s, k] += EWMA_ALPHA * (x - ewma[s, k])
        else:
            ewma[s, k] = x
        last_sig[s, k] = x
        last_sig_ts[s, k] = t_ms
    return range_bad, roc_bad


@njit(nogil=True, cache=True)
def update_batch(slot, ts, seq, sigv, bytes_in, bytes_out, conns, auth_fail, dst_port, src_hash,
                 sig_state, fw_unknown, partition, offset, auth_ok, dst_hash, princ_hash,
                 istate, acc, sacc, last_sig, last_sig_ts, ewma, ports, ring, ring_ws, ring_ports,
                 base, peer, peer_n, nominal_hz, lo, hi, zfl, rmin, rmax, inv, nsig,
                 window_ms, warm, require_sig, lateness_ms, trig, part_max, mark_cap, out_feat,
                 out_meta, out_peer=None):
    """Fold a batch (arrival order) into the store; window rows go to out_*; returns row count.

    part_max[p] (in/out) is the highest event time of authentic, non-replayed messages from
    source partition p, never above `mark_cap` (wall clock + a small lead in live runs, so one
    device's future clock cannot close everyone's windows; such a message still counts for its own
    device, as clock skew when it is more than the skew trigger ahead of the cap). A device lives
    in one partition, so its order is that partition's; a
    device's window closes once it ends `lateness_ms` before its partition's mark, event by event,
    so neither batch cuts nor the interleaving of partitions change the windows. Besides closed windows, a window that
    crosses a threshold in `trig` yields one early row (final = 0) at that moment, so detection
    need not wait for the window to end (one more early row whenever another threshold is crossed).
    dst_hash / princ_hash: nonzero hashes of net.dst_ip / auth.principal (0 = none).
    out_* need at least 2 * len(slot) rows. out_peer (optional, one per event) gets PEER_* bits:
    what the event's addresses were to its device when it arrived.
    """
    r = 0
    for i in range(slot.shape[0]):
        s, t_ms = slot[i], ts[i]
        wm = part_max[partition[i]]
        t = istate[s, I_TYPE]
        ws = istate[s, I_WIN_START]
        last = istate[s, I_LAST_SEQ]
        replay = last >= 0 and seq[i] <= last and t_ms <= istate[s, I_LAST_TS]
        hz = nominal_hz[t]
        # in-order data may arrive up to lateness_ms after its window ends; replayed or old
        # messages are evidence of now, so they never land in a window the shard has passed
        stale = ws + window_ms <= wm and (replay or t_ms < ws)
        if ws >= 0 and (t_ms >= ws + window_ms or ws + window_ms + lateness_ms <= wm or stale):
            close_window(s, ws, window_ms, istate, acc, sacc, ewma, ports, ring, ring_ws,
                         ring_ports, base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm,
                         out_feat, out_meta, r)
            r += 1
            ws = -1
        if ws < 0:  # windows only move forward: an old timestamp never reopens the past
            ws = max((t_ms // window_ms) * window_ms, istate[s, I_CLOSED_END],
                     ((wm - lateness_ms) // window_ms) * window_ms)
            istate[s, I_WIN_START] = ws
            istate[s, I_WIN_PART] = partition[i]
            istate[s, I_FIRST_OFF] = offset[i]
        istate[s, I_LAST_OFF] = offset[i]
        istate[s, I_EVENTS] += 1
        istate[s, I_DIRTY] = 1
        a = acc[s]
        a[A_COUNT] += 1.0
        a[A_BIN] += bytes_in[i]
        a[A_BOUT] += bytes_out[i]
        a[A_CONNS] += conns[i]
        # what a message says about logins and firmware is believed only when it is authentic:
        # a forger's claims count as what they are (unsigned, bad signature), not as evidence
        authentic = sig_state[i] == 0 or (sig_state[i] == 1 and not require_sig)
        if authentic:
            a[A_AUTH] += auth_fail[i]
            a[A_FW] += fw_unknown[i]
        late = t_ms < ws
        if late:
            a[A_LATE] += 1.0
        # a replay repeats an old sequence number with an old timestamp; a reboot resets seq only
        if replay:
            a[A_REPLAYS] += 1.0
        else:
            if last >= 0 and seq[i] > last + 1:
                a[A_GAPS] += seq[i] - last - 1
            a[A_JUMPS] += _seq_jumped(last, seq[i], t_ms - istate[s, I_LAST_TS], hz)
            # an authentic, in-sequence message far behind its partition's mark was held back
            # (or its clock is), one far beyond the mark's cap claims a future: its content may
            # be genuine, its time is not
            if (wm >= 0 and wm - t_ms > trig[T_SKEW]) or t_ms > mark_cap + trig[T_SKEW]:
                a[A_SKEW] += 1.0
            _bursts(s, t_ms, dst_port[i], istate, a, ports)
            istate[s, I_LAST_SEQ] = seq[i]
            istate[s, I_LAST_TS] = max(istate[s, I_LAST_TS], t_ms)
            if sig_state[i] == 0 or (sig_state[i] == 1 and not require_sig):
                wm = max(wm, min(t_ms, mark_cap))
                part_max[partition[i]] = wm
        if sig_state[i] == 2:
            a[A_HMAC] += 1.0
        elif sig_state[i] == 1:
            a[A_UNSIGNED] += 1.0
        p = dst_port[i]
        if p >= 0:
            h = (p * 40503) % PORT_BITS
            ports[s, h >> 6] |= np.uint64(1) << np.uint64(h & 63)
        if out_peer is not None:
            out_peer[i] = _peer_src(s, src_hash[i], istate, warm)
        _observe_identity(s, t_ms, src_hash[i], princ_hash[i] if authentic else 0,
                          auth_ok[i] if authentic else 0.0, istate, a, warm)
        new_dst = _observe_destination(s, dst_hash[i], p, bytes_out[i], bytes_in[i], istate, a,
                                       base, warm)
        if out_peer is not None and dst_hash[i] != 0:
            out_peer[i] |= PEER_NEW_DST if new_dst else PEER_USUAL_DST
        g = peer_row(s, istate, peer_n, warm)
        ref = _bytes_per_msg_ref(s, g, istate[s, I_BASE_N], base, peer, peer_n[g], warm)
        if ref > 0.0 and bytes_out[i] >= trig[T_EXFIL] * ref:
            # a huge upload counts double when it also goes somewhere the device never went
            a[A_EXFIL] += 2.0 if new_dst else 1.0
        # signals of replayed, late, forged (or, when required, unsigned) messages are not believed
        if not (replay or late or sig_state[i] == 2 or (sig_state[i] == 1 and require_sig)):
            a[A_TRUSTED] += 1.0
            range_bad, roc_bad = _observe_signals(i, s, t, t_ms, sigv, sacc, last_sig, last_sig_ts,
                                                  ewma, lo, hi, rmin, rmax, nsig)
            a[A_RANGE] += range_bad
            a[A_ROC] += roc_bad
            a[A_INV] += _invariants_broken(sigv[i], t, inv)
        # fire early: the window so far, the moment a deterministic threshold is crossed (once)
        crossed = _crossed(s, t, istate, acc, ports, nominal_hz, window_ms, require_sig, base, peer,
                           peer_n, warm, trig)
        if crossed & ~istate[s, I_EARLY]:
            istate[s, I_EARLY] |= crossed
            # it ends now on the device's own clock (its latest authentic time), not at a replayed
            # message's old time, and not on other devices' clocks: ids stay order-independent
            window_row(s, ws, max(t_ms, ws, istate[s, I_LAST_TS]) + 1, window_ms, istate, acc, sacc, ewma, ports, ring,
                       ring_ws, ring_ports, base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm,
                       out_feat, out_meta, r, 0)
            r += 1
    return r


@njit(nogil=True, cache=True)
def _crossed(s, t, istate, acc, ports, nominal_hz, window_ms, require_sig, base, peer, peer_n,
             warm, trig):
    """Bitmask of the deterministic thresholds slot s's open window has crossed so far (0 = none);
    rate and new ports are also judged on their last second or two, so a flood or a scan that
    starts late in a window fires at once instead of when the whole window's count catches up."""
    a = acc[s]
    hz = nominal_hz[t]
    m = 0
    if a[A_HMAC] >= trig[T_HMAC] or (require_sig and a[A_UNSIGNED] >= 1):
        m |= 1
    if a[A_REPLAYS] >= trig[T_REPLAY]:
        m |= 2
    if a[A_FW] >= 1:
        m |= 4
    if a[A_RANGE] + a[A_ROC] + a[A_INV] >= 1:
        m |= 8
    if a[A_AUTH] >= trig[T_AUTH]:
        m |= 16
    if a[A_COUNT] >= trig[T_RATE] * hz * window_ms / 1000 or (
            _rate_burst_ratio(a[A_RATE_BURST], hz) >= trig[T_RATE]):
        m |= 32
    if a[A_PORT_BURST] >= trig[T_PORT_BURST] or (
            ports[s, 0] != 0 and distinct_estimate(ports[s]) >= trig[T_PORTS]):
        m |= 64
    g = peer_row(s, istate, peer_n, warm)
    ref = _bytes_per_msg_ref(s, g, istate[s, I_BASE_N], base, peer, peer_n[g], warm)
    if (ref > 0.0 and a[A_COUNT] >= 2 and a[A_BOUT] / a[A_COUNT] >= trig[T_EXFIL] * ref) or (
            a[A_EXFIL] >= 2):
        m |= 128
    if a[A_FLIPS] >= trig[T_FLIPS] or a[A_JUMPS] >= trig[T_JUMPS]:
        m |= 256
    if a[A_SKEW] >= 1:
        m |= 512
    if a[A_UNAUTH] >= trig[T_UNAUTH]:
        m |= 1024
    if a[A_HIJACK] >= trig[T_HIJACK]:
        m |= 2048
    return m


@njit(nogil=True, cache=True)
def peer_row(s, istate, peer_n, warm):
    """The peer row slot s is compared with: its firmware group once warm, else its type."""
    g = istate[s, I_PEER] - 1
    if g >= 0 and peer_n[g] >= PEER_WARM * warm:
        return g
    return istate[s, I_TYPE]


@njit(nogil=True, cache=True)
def _bytes_per_msg_ref(s, g, base_n, base, peer, pn, warm):
    """Usual bytes out per message: the device's own (one clean window) or its peers' (row g);
    0 = unknown."""
    if base_n >= 1:
        return base[s, B_BOUT, 0] / max(base[s, B_COUNT, 0], 1.0)
    if pn >= warm:
        return peer[g, B_BOUT, 0] / max(peer[g, B_COUNT, 0], 1.0)
    return 0.0


@njit(nogil=True, cache=True)
def close_due(n_slots, part_watermark, istate, acc, sacc, ewma, ports, ring, ring_ws, ring_ports,
              base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, window_ms, warm, out_feat, out_meta):
    """Close every open window ending at or before its partition's entry in part_watermark."""
    r = 0
    for s in range(n_slots):
        ws = istate[s, I_WIN_START]
        if ws >= 0 and ws + window_ms <= part_watermark[istate[s, I_WIN_PART]]:
            close_window(s, ws, window_ms, istate, acc, sacc, ewma, ports, ring, ring_ws,
                         ring_ports, base, peer, peer_n, nominal_hz, lo, hi, zfl, nsig, warm,
                         out_feat, out_meta, r)
            r += 1
    return r


# ------------------------------------------------------------------ identity and profile checks

KNOWN_BITS = 62  # per int64 word of a learned set (bit 63 stays clear: no sign games)
OFF_RATIO = 3.0  # bytes per message this far (either way) from the own baseline = "off profile"


@njit(nogil=True, cache=True)
def _bit(h):
    """Two bits per value (a 2-hash Bloom filter in one word): with one or two addresses learned,
    a new one collides ~1 in 4,000 times instead of ~1 in 60."""
    return (np.int64(1) << np.int64((h * 40503) % KNOWN_BITS)) | (
        np.int64(1) << np.int64((h // KNOWN_BITS) % KNOWN_BITS))


@njit(nogil=True, cache=True)
def _has(word, bits):
    return word & bits == bits


@njit(nogil=True, cache=True)
def _rate_burst_ratio(c, hz):
    """Decayed message count over the last ~2 s as a multiple of the nominal rate (0 below
    BURST_MIN_MSGS: a few messages close together are jitter, not a rate)."""
    return c * 1000.0 / RATE_TAU_MS / hz if c >= BURST_MIN_MSGS else 0.0


@njit(nogil=True, cache=True)
def _seq_jumped(last, seq, dt_ms, hz):
    """1 when the counter went back on a fresh timestamp (a reboot, or a second sender) or forward
    by more than the time since the last message allows at 3x the nominal rate."""
    if last < 0:
        return 0.0
    if seq <= last:
        return 1.0
    return 1.0 if seq - last - 1 > 3.0 + 3.0 * max(dt_ms, 0) * hz / 1000.0 else 0.0


@njit(nogil=True, cache=True)
def _bursts(s, t_ms, port, istate, a, ports):
    """Exponentially decayed (event-time) counts of messages and of new destination ports."""
    last = istate[s, I_BURST_TS]
    dt = float(t_ms - last) if last > 0 else 1e12
    dt = max(dt, 0.0)
    a[A_RATE_BURST] = a[A_RATE_BURST] * math.exp(-dt / RATE_TAU_MS) + 1.0
    new_port = 0.0
    if port >= 0:
        h = (port * 40503) % PORT_BITS
        if ports[s, h >> 6] & (np.uint64(1) << np.uint64(h & 63)) == 0:
            new_port = 1.0
    a[A_PORT_BURST] = a[A_PORT_BURST] * math.exp(-dt / PORT_TAU_MS) + new_port
    istate[s, I_BURST_TS] = max(last, t_ms)


@njit(nogil=True, cache=True)
def _peer_src(s, src, istate, warm):
    """PEER_FOREIGN_SRC if `src` is not an address slot s uses (judged once its profile is learned,
    before this event teaches it anything), else 0."""
    if src == 0 or istate[s, I_BASE_N] < warm or _has(istate[s, I_KSRC], _bit(src)):
        return 0
    return PEER_FOREIGN_SRC


@njit(nogil=True, cache=True)
def _observe_identity(s, t_ms, src, princ, ok, istate, a, warm):
    """Source-address alternation (cloning) and logins from new addresses or principals.

    An A -> B -> A alternation within one window counts as a flip; a single move (DHCP) does not.
    Addresses are learned during warm-up and, after it, once a device keeps using one (two messages
    in a row), so a move is adopted while a one-off login source is not: a login from a new address
    is judged by the device's next message from another address (the device still talks from
    elsewhere = a foreign login; a device that moved keeps the new address, which stays pending
    until PEND_LOGIN_MS passes). A login by a principal never seen during warm-up counts at once.
    """
    learning = istate[s, I_BASE_N] < warm
    last = istate[s, I_LAST_SRC]
    pend = istate[s, I_PEND_LOGIN]
    if pend != 0 and t_ms - istate[s, I_PEND_TS] > PEND_LOGIN_MS:
        istate[s, I_PEND_LOGIN] = pend = 0
    if pend != 0 and src != 0 and src != pend:
        istate[s, I_PEND_LOGIN] = 0
        a[A_UNAUTH] += 1.0
    if src != 0:
        known = _has(istate[s, I_KSRC], _bit(src))
        if last != 0 and last != src:
            if a[A_SRCCHG] >= 1 and src == istate[s, I_PREV_SRC]:
                a[A_FLIPS] += 1.0
            a[A_SRCCHG] += 1.0
            istate[s, I_PREV_SRC] = last
        if learning or src == last:
            istate[s, I_KSRC] |= _bit(src)
        istate[s, I_LAST_SRC] = src
    else:
        known = True
    if princ != 0 and learning:
        istate[s, I_KPRINC] |= _bit(princ)
    if ok > 0 and not learning:
        if princ != 0 and not _has(istate[s, I_KPRINC], _bit(princ)):
            a[A_UNAUTH] += 1.0
        elif not known and src != last:
            istate[s, I_PEND_LOGIN], istate[s, I_PEND_TS] = src, t_ms


@njit(nogil=True, cache=True)
def _observe_destination(s, dst_hash, port, bout, bin_, istate, a, base, warm):
    """Destinations (address, port) outside the learned set; a hijack shows as a new destination
    used again and again with traffic off the own profile in both directions. True = new."""
    if dst_hash == 0 and port < 0:
        return False
    key = (dst_hash * 31 + port) % 4294967291 + 1
    # a partitioned Bloom filter: one bit per word, a destination is known when both are set
    m0 = np.int64(1) << np.int64((key * 40503) % KNOWN_BITS)
    m1 = np.int64(1) << np.int64((key // KNOWN_BITS) % KNOWN_BITS)
    if istate[s, I_BASE_N] < warm:
        istate[s, I_KDST0] |= m0
        istate[s, I_KDST1] |= m1
        return False
    if _has(istate[s, I_KDST0], m0) and _has(istate[s, I_KDST1], m1):
        return False
    a[A_NEWDST] += 1.0
    if key == istate[s, I_LAST_NEWDST] and base[s, B_COUNT, 0] > 0.0:
        n = base[s, B_COUNT, 0]
        if _off(bout, base[s, B_BOUT, 0] / n) and _off(bin_, base[s, B_BIN, 0] / n):
            a[A_HIJACK] += 1.0
    istate[s, I_LAST_NEWDST] = key
    return True


@njit(nogil=True, cache=True)
def _off(x, ref):
    return ref > 0.0 and (x > OFF_RATIO * ref or x * OFF_RATIO < ref)


@njit(nogil=True, cache=True)
def _profile_dims_off(s, count, acc, base, base_n, warm, count_z, sig_z):
    """How many own-baseline dimensions the window is far from: rate, bytes out and in per message,
    destinations, signals (0 while the baseline is still learning)."""
    if base_n < warm:
        return 0.0
    n = max(base[s, B_COUNT, 0], 1.0)
    c = max(count, 1.0)
    dims = 0.0
    dims += abs(count_z) >= 4.0
    dims += _off(acc[s, A_BOUT] / c, base[s, B_BOUT, 0] / n)
    dims += _off(acc[s, A_BIN] / c, base[s, B_BIN, 0] / n)
    dims += acc[s, A_NEWDST] > 0
    dims += sig_z >= 4.0
    return dims
