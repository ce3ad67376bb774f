"""Numba JSON parser for the telemetry shape producers send: a whole batch of messages -> numpy columns.

It accepts only what it is certain about (known keys once each, plain ASCII strings without escapes,
numbers it converts exactly, RFC 3339 times of the common form) and flags every other message for the
reference decoder (operators/decode/telemetry.py), so dead-letter reasons and edge-case semantics stay exactly
the reference's. Strings are returned as byte spans into the batch buffer; `intern_spans` dedups them
so a batch decodes each distinct device id, address or firmware string once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

# one bound for both decoders: beyond it the fast path leaves the value to the reference, which
# rejects it (Numba freezes the imported float as a constant)
from twinguard.operators.decode.telemetry import MAX_SIGNAL_ABS

U8 = npt.NDArray[np.uint8]
# Helpers allocate nothing, so they run without Numba's reference counting: with it, every call
# increfs/decrefs each array argument atomically, which cost ~5 ns per call (measured), several
# times the work of the small per-byte helpers.
_helper = njit(nogil=True, cache=True, _nrt=False)

OK, FALLBACK = 0, 1  # per-message status
# spans: column pairs [start, end) into the batch buffer; start = -1 means absent/null
SP_DEV, SP_SRC, SP_DST, SP_PRINC, SP_FW, SP_SIG, SP_CUT = 0, 2, 4, 6, 8, 10, 12
N_SPAN_COLS = 14
# integer columns
C_TYPE, C_TS, C_SEQ, C_PORT = 0, 1, 2, 3
N_INTS = 4
# float columns (the reference's float(int) of the counters)
V_BIN, V_BOUT, V_CONN, V_FAIL, V_SUCC = 0, 1, 2, 3, 4
N_FLOATS = 5

MAX_COUNT = 2**53  # twinguard.schemas.messages.Count
MAX_EPOCH_MS = 253_402_300_799_999  # twinguard.schemas.messages.EpochMs
MAX_PORT = 65535
MAX_DEVICE_ID, MAX_SIG = 128, 128  # twinguard.schemas.messages length limits
MAX_FW, MAX_NAME = 64, 128  # twinguard.schemas.fields
MAX_SIG_DIGITS = 18  # significant digits an int64 mantissa holds exactly


def name_table(names: list[bytes]) -> tuple[U8, npt.NDArray[np.int64]]:
    """Names as a zero-padded [n, longest] byte matrix plus their lengths (what `_match` reads)."""
    width = max([len(x) for x in names] + [1])
    table = np.zeros((len(names), width), dtype=np.uint8)
    for i, x in enumerate(names):
        table[i, :len(x)] = np.frombuffer(x, dtype=np.uint8)
    return table, np.array([len(x) for x in names], dtype=np.int64)


K_DEV, K_TYPE, K_TS, K_SEQ, K_SIGNALS, K_NET, K_AUTH, K_FW, K_SIG = range(9)
_TOP, _TOP_LEN = name_table([b"device_id", b"type", b"ts", b"seq", b"signals", b"net", b"auth",
                             b"fw", b"sig"])
_REQUIRED = (1 << K_DEV) | (1 << K_TYPE) | (1 << K_TS) | (1 << K_SEQ) | (1 << K_SIGNALS)
N_SRC, N_DST, N_PORT, N_BIN, N_BOUT, N_PIN, N_POUT, N_CONN = range(8)
_NET, _NET_LEN = name_table([b"src_ip", b"dst_ip", b"dst_port", b"bytes_in", b"bytes_out",
                             b"packets_in", b"packets_out", b"connections"])
A_FAIL, A_SUCC, A_PRINC = range(3)
_AUTH, _AUTH_LEN = name_table([b"failures", b"successes", b"principal"])
_POW10 = np.array([float(10**k) for k in range(23)])  # all exact in float64
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_WS = np.zeros(256, dtype=np.uint8)  # JSON whitespace
_WS[[9, 10, 13, 32]] = 1
# device_id pattern ^[A-Za-z0-9._:/-]+$ as a byte lookup table
_ID_CHARS = np.zeros(256, dtype=np.uint8)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-":
    _ID_CHARS[_c] = 1
# twinguard.schemas.fields patterns as byte classes: 1 = may start the value, 2 = may follow
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_FW_CHARS = np.zeros(256, dtype=np.uint8)  # FW_PATTERN
_FW_CHARS[list(b"._+~-")] = 2
_FW_CHARS[list(_ALNUM)] = 3
_NAME_CHARS = np.zeros(256, dtype=np.uint8)  # NAME_PATTERN
_NAME_CHARS[list(_ALNUM + b"._@+-")] = 3

_QUOTE, _BSLASH, _COLON, _COMMA, _LBRACE, _RBRACE, _MINUS, _PLUS, _DOT = 34, 92, 58, 44, 123, 125, 45, 43, 46


@_helper
def _ws(buf: U8, p: int, end: int) -> int:
    while p < end and _WS[buf[p]]:
        p += 1
    return p


@_helper
def _is_digit(buf: U8, p: int, end: int) -> bool:
    return p < end and 48 <= buf[p] <= 57


@_helper
def _string_end(buf: U8, p: int, end: int) -> int:
    """Index of the closing quote of the plain string opening at p; -1 if not a plain ASCII string."""
    if p >= end or buf[p] != _QUOTE:
        return -1
    q = p + 1
    while q < end:
        c = buf[q]
        if c == _QUOTE:
            return q
        if c == _BSLASH or c < 32 or c >= 128:
            return -1
        q += 1
    return -1


@_helper
def _match(buf: U8, s: int, e: int, names: U8, lens: np.ndarray) -> int:
    """Row of `names` equal to buf[s:e], or -1."""
    n = e - s
    for k in range(names.shape[0]):
        if lens[k] != n:
            continue
        j = 0
        while j < n and buf[s + j] == names[k, j]:
            j += 1
        if j == n:
            return k
    return -1


@_helper
def _is_null(buf: U8, p: int, end: int) -> bool:
    return (p + 4 <= end and buf[p] == 110 and buf[p + 1] == 117 and buf[p + 2] == 108
            and buf[p + 3] == 108)


@_helper
def _uint(buf: U8, p: int, end: int, limit: int) -> tuple[int, int]:
    """(value, index after it) of a JSON integer in 0..limit; index -1 if not exactly that."""
    v, q = 0, p
    while q < end and 48 <= buf[q] <= 57 and q - p < 17:
        v = v * 10 + (int(buf[q]) - 48)
        q += 1
    n = q - p
    if n == 0 or (n > 1 and buf[p] == 48) or n > 16:
        return 0, -1
    if q < end and (buf[q] == _DOT or buf[q] == 101 or buf[q] == 69 or 48 <= buf[q] <= 57):
        return 0, -1  # a float (or too long) where an int is due: the reference explains
    if v > limit:
        return 0, -1
    return v, q


@_helper
def _number(buf: U8, p: int, end: int) -> tuple[float, int]:
    """(value, index after it) of a JSON number convertible exactly (Clinger's fast path:
    mantissa <= 2**53, |power of ten| <= 22, one correctly rounded operation); index -1 otherwise."""
    neg = p < end and buf[p] == _MINUS
    if neg:
        p += 1
    if not _is_digit(buf, p, end):
        return 0.0, -1
    m, nd, e10, is_int = 0, 0, 0, True
    if buf[p] == 48:
        p += 1
        if _is_digit(buf, p, end):
            return 0.0, -1  # leading zero: not JSON
    else:
        while _is_digit(buf, p, end):
            m = m * 10 + (int(buf[p]) - 48)
            nd += 1
            p += 1
            if nd > MAX_SIG_DIGITS:
                return 0.0, -1
    if p < end and buf[p] == _DOT:
        is_int = False
        p += 1
        if not _is_digit(buf, p, end):
            return 0.0, -1
        while _is_digit(buf, p, end):
            d = int(buf[p]) - 48
            if nd > 0 or d > 0:
                m = m * 10 + d
                nd += 1
                if nd > MAX_SIG_DIGITS:
                    return 0.0, -1
            e10 -= 1
            p += 1
    if p < end and (buf[p] == 101 or buf[p] == 69):
        is_int = False
        p += 1
        eneg = p < end and buf[p] == _MINUS
        if p < end and (buf[p] == _MINUS or buf[p] == _PLUS):
            p += 1
        x, nx = 0, 0
        while _is_digit(buf, p, end):
            x = x * 10 + (int(buf[p]) - 48)
            nx += 1
            p += 1
            if nx > 4:
                return 0.0, -1
        if nx == 0:
            return 0.0, -1
        e10 += -x if eneg else x
    if neg and m == 0 and is_int:
        return 0.0, -1  # "-0" for a float: leave the sign question to the reference
    if m > MAX_COUNT:
        return 0.0, -1
    if m == 0:
        v = 0.0
    elif 0 <= e10 <= 22:
        v = float(m) * _POW10[e10]
    elif -22 <= e10 < 0:
        v = float(m) / _POW10[-e10]
    else:
        return 0.0, -1
    return (-v if neg else v), p


@_helper
def _digits(buf: U8, p: int, n: int) -> int:
    v = 0
    for j in range(n):
        c = buf[p + j]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (int(c) - 48)
    return v


@_helper
def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@_helper
def _rfc3339_ms(buf: U8, s: int, e: int) -> int:
    """Epoch ms of 'YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)' as the reference computes it
    (int(datetime.timestamp() * 1000)); -1 for any other form (the reference decides those)."""
    if e - s < 20:
        return -1
    if (buf[s + 4] != _MINUS or buf[s + 7] != _MINUS or buf[s + 10] != 84 or buf[s + 13] != _COLON
            or buf[s + 16] != _COLON):
        return -1
    y, mo, d = _digits(buf, s, 4), _digits(buf, s + 5, 2), _digits(buf, s + 8, 2)
    h, mi, sec = _digits(buf, s + 11, 2), _digits(buf, s + 14, 2), _digits(buf, s + 17, 2)
    if y < 1970 or mo < 1 or mo > 12 or d < 1 or h < 0 or h > 23 or mi < 0 or mi > 59 or sec < 0 or sec > 59:
        return -1
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if d > _DAYS_IN_MONTH[mo] + (1 if leap and mo == 2 else 0):
        return -1
    p, us = s + 19, 0
    if buf[p] == _DOT:
        p += 1
        nd = 0
        while p < e and 48 <= buf[p] <= 57:
            if nd == 6:
                return -1  # sub-microsecond digits: the reference rounds them
            us = us * 10 + (int(buf[p]) - 48)
            nd += 1
            p += 1
        if nd == 0:
            return -1
        for _ in range(6 - nd):
            us *= 10
    if p >= e:
        return -1
    off = 0
    if buf[p] == 90:  # Z
        p += 1
    elif buf[p] == _PLUS or buf[p] == _MINUS:
        if p + 6 != e or buf[p + 3] != _COLON:
            return -1
        oh, om = _digits(buf, p + 1, 2), _digits(buf, p + 4, 2)
        if oh < 0 or oh > 23 or om < 0 or om > 59:
            return -1
        off = (oh * 60 + om) * 60
        if buf[p] == _MINUS:
            off = -off
        p += 6
    if p != e:
        return -1
    total_us = ((_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off) * 1_000_000
                + us)
    if total_us < 0 or total_us > MAX_COUNT:
        return -1
    # float(total_us) is exact below 2**53, so this is Python's total_us / 10**6 (correctly rounded)
    return int(float(total_us) / 1e6 * 1000.0)


@_helper
def _classed_or_null(buf: U8, p: int, end: int, spans: np.ndarray, i: int, col: int, max_len: int,
                     chars: U8) -> int:
    """A plain string of 1..max_len bytes of a class (bit 1: may start it, bit 2: may follow), its
    span into spans[i, col:col+2], or null; index after it, -1 for anything else (the reference
    then judges it)."""
    q = p if _is_null(buf, p, end) else _string_end(buf, p, end)
    if q == p:
        return p + 4
    if q < 0 or q - p - 1 < 1 or q - p - 1 > max_len or (chars[buf[p + 1]] & 1) == 0:
        return -1
    for j in range(p + 2, q):
        if (chars[buf[j]] & 2) == 0:
            return -1
    spans[i, col], spans[i, col + 1] = p + 1, q
    return q + 1


@_helper
def _octet(buf: U8, p: int, end: int) -> int:
    """Index after a decimal 0..255 without leading zeros at p (IPV4's octet); -1 if none."""
    v, q = 0, p
    while q < end and q - p < 3 and 48 <= buf[q] <= 57:
        v = v * 10 + (int(buf[q]) - 48)
        q += 1
    if q == p or v > 255 or (q - p > 1 and buf[p] == 48):
        return -1
    return q


@_helper
def _ipv4_or_null(buf: U8, p: int, end: int, spans: np.ndarray, i: int, col: int) -> int:
    """An IPv4 dotted quad (span into spans[i, col:col+2]) or null; -1 for anything else,
    IPv6 included: the reference judges those."""
    q = p if _is_null(buf, p, end) else _string_end(buf, p, end)
    if q == p:
        return p + 4
    if q < 0:
        return -1
    x = p + 1
    for k in range(4):
        x = _octet(buf, x, q)
        if x < 0 or (k < 3 and (x >= q or buf[x] != _DOT)):
            return -1
        x += 1 if k < 3 else 0
    if x != q:
        return -1
    spans[i, col], spans[i, col + 1] = p + 1, q
    return q + 1


@_helper
def _object_key(buf: U8, p: int, end: int, names: U8, lens: np.ndarray) -> tuple[int, int]:
    """(key row, index of its value) for the member starting at p; row -1 if unknown/not plain."""
    q = _string_end(buf, p, end)
    if q < 0:
        return -1, -1
    k = _match(buf, p + 1, q, names, lens)
    p = _ws(buf, q + 1, end)
    if k < 0 or p >= end or buf[p] != _COLON:
        return -1, -1
    return k, _ws(buf, p + 1, end)


@_helper
def _after_member(buf: U8, p: int, end: int) -> tuple[int, bool]:
    """After a member's value: (index of the next member, False) on ',', (index after '}', True)
    on '}', (-1, True) on anything else."""
    p = _ws(buf, p, end)
    if p < end and buf[p] == _COMMA:
        return _ws(buf, p + 1, end), False
    if p < end and buf[p] == _RBRACE:
        return p + 1, True
    return -1, True


@_helper
def _net(buf: U8, p: int, end: int, i: int, ints: np.ndarray, floats: np.ndarray,
         spans: np.ndarray) -> int:
    """Parse the `net` value (object or null) into row i; index after it, -1 to fall back."""
    if _is_null(buf, p, end):
        return p + 4
    if p >= end or buf[p] != _LBRACE:
        return -1
    p = _ws(buf, p + 1, end)
    if p < end and buf[p] == _RBRACE:
        return p + 1
    seen = 0
    while True:
        k, p = _object_key(buf, p, end, _NET, _NET_LEN)
        if k < 0 or seen & (1 << k):
            return -1
        seen |= 1 << k
        if k == N_SRC:
            p = _ipv4_or_null(buf, p, end, spans, i, SP_SRC)
        elif k == N_DST:
            p = _ipv4_or_null(buf, p, end, spans, i, SP_DST)
        elif k == N_PORT:
            if _is_null(buf, p, end):
                p += 4
            else:
                v, p = _uint(buf, p, end, MAX_PORT)
                ints[i, C_PORT] = v
        else:
            v, p = _uint(buf, p, end, MAX_COUNT)
            if k == N_BIN:
                floats[i, V_BIN] = float(v)
            elif k == N_BOUT:
                floats[i, V_BOUT] = float(v)
            elif k == N_CONN:
                floats[i, V_CONN] = float(v)
        if p < 0:
            return -1
        p, done = _after_member(buf, p, end)
        if done:
            return p


@_helper
def _auth(buf: U8, p: int, end: int, i: int, floats: np.ndarray, spans: np.ndarray) -> int:
    """Parse the `auth` value (object or null) into row i; index after it, -1 to fall back."""
    if _is_null(buf, p, end):
        return p + 4
    if p >= end or buf[p] != _LBRACE:
        return -1
    p = _ws(buf, p + 1, end)
    if p < end and buf[p] == _RBRACE:
        return p + 1
    seen = 0
    while True:
        k, p = _object_key(buf, p, end, _AUTH, _AUTH_LEN)
        if k < 0 or seen & (1 << k):
            return -1
        seen |= 1 << k
        if k == A_PRINC:
            p = _classed_or_null(buf, p, end, spans, i, SP_PRINC, MAX_NAME, _NAME_CHARS)
        else:
            v, p = _uint(buf, p, end, MAX_COUNT)
            floats[i, V_FAIL if k == A_FAIL else V_SUCC] = float(v)
        if p < 0:
            return -1
        p, done = _after_member(buf, p, end)
        if done:
            return p


@_helper
def _signals(buf: U8, p: int, end: int, sn: np.ndarray, sv: np.ndarray) -> tuple[int, int]:
    """(index after the object, members) of the `signals` object; names as spans in sn, values in sv
    (resolved once the type is known: `type` may come later). Index -1 to fall back."""
    if p >= end or buf[p] != _LBRACE:
        return -1, 0
    p = _ws(buf, p + 1, end)
    if p < end and buf[p] == _RBRACE:
        return p + 1, 0
    count = 0
    while True:
        q = _string_end(buf, p, end)
        if q < 0 or count == sn.shape[0]:
            return -1, 0
        sn[count, 0], sn[count, 1] = p + 1, q
        p = _ws(buf, q + 1, end)
        if p >= end or buf[p] != _COLON:
            return -1, 0
        v, p = _number(buf, _ws(buf, p + 1, end), end)
        if p < 0 or abs(v) > MAX_SIGNAL_ABS:
            return -1, 0
        sv[count] = v
        count += 1
        p, done = _after_member(buf, p, end)
        if done:
            return p, count


@_helper
def _device_id(buf: U8, p: int, end: int, i: int, spans: np.ndarray) -> int:
    q = _string_end(buf, p, end)
    if q < 0 or q - p - 1 < 1 or q - p - 1 > MAX_DEVICE_ID:
        return -1
    for j in range(p + 1, q):
        if _ID_CHARS[buf[j]] == 0:
            return -1
    spans[i, SP_DEV], spans[i, SP_DEV + 1] = p + 1, q
    return q + 1


@_helper
def _sig(buf: U8, kq: int, p: int, end: int, i: int, spans: np.ndarray) -> int:
    """The `sig` member (key quote at kq, value at p): value span, and the bytes to cut for the
    signed payload exactly as decode._check_signature strips them (',"sig":"…"' else '"sig":"…",');
    cut start -1 when neither form is there (the reference re-encodes canonically)."""
    if _is_null(buf, p, end):
        return p + 4
    q = _string_end(buf, p, end)
    if q < 0 or q - p - 1 > MAX_SIG:
        return -1
    spans[i, SP_SIG], spans[i, SP_SIG + 1] = p + 1, q
    if p == kq + 6:  # '"sig":' then the value's quote, nothing in between
        if buf[kq - 1] == _COMMA:
            spans[i, SP_CUT], spans[i, SP_CUT + 1] = kq - 1, q + 1
        elif q + 1 < end and buf[q + 1] == _COMMA:
            spans[i, SP_CUT], spans[i, SP_CUT + 1] = kq, q + 2
    return q + 1


@_helper
def _message(buf: U8, p: int, end: int, i: int, tnames: U8, tlens: np.ndarray, snames: U8,
             slens: np.ndarray, max_ts: int, ints: np.ndarray, floats: np.ndarray,
             signals: np.ndarray, spans: np.ndarray, sn: np.ndarray, sv: np.ndarray) -> int:
    """Parse message buf[p:end] into row i; OK or FALLBACK."""
    p = _ws(buf, p, end)
    if p >= end or buf[p] != _LBRACE:
        return FALLBACK
    p = _ws(buf, p + 1, end)
    seen, nsig = 0, 0
    while True:
        kq = p
        k, p = _object_key(buf, p, end, _TOP, _TOP_LEN)
        if k < 0 or seen & (1 << k) or p >= end:
            return FALLBACK
        seen |= 1 << k
        if k == K_DEV:
            p = _device_id(buf, p, end, i, spans)
        elif k == K_TYPE:
            q = _string_end(buf, p, end)
            t = _match(buf, p + 1, q, tnames, tlens) if q >= 0 else -1
            if t < 0:
                return FALLBACK
            ints[i, C_TYPE] = t
            p = q + 1
        elif k == K_TS:
            if buf[p] == _QUOTE:
                q = _string_end(buf, p, end)
                ts = _rfc3339_ms(buf, p + 1, q) if q >= 0 else -1
                p = q + 1 if ts >= 0 else -1
            else:
                ts, p = _uint(buf, p, end, MAX_EPOCH_MS)
            if ts > max_ts:
                return FALLBACK
            ints[i, C_TS] = ts
        elif k == K_SEQ:
            ints[i, C_SEQ], p = _uint(buf, p, end, MAX_COUNT)
        elif k == K_SIGNALS:
            p, nsig = _signals(buf, p, end, sn, sv)
        elif k == K_NET:
            p = _net(buf, p, end, i, ints, floats, spans)
        elif k == K_AUTH:
            p = _auth(buf, p, end, i, floats, spans)
        elif k == K_FW:
            p = _classed_or_null(buf, p, end, spans, i, SP_FW, MAX_FW, _FW_CHARS)
        else:
            p = _sig(buf, kq, p, end, i, spans)
        if p < 0:
            return FALLBACK
        p, done = _after_member(buf, p, end)
        if p < 0:
            return FALLBACK
        if done:
            break
    if _ws(buf, p, end) != end or (seen & _REQUIRED) != _REQUIRED:
        return FALLBACK
    t = ints[i, C_TYPE]
    got = 0
    for j in range(nsig):
        k = _match(buf, sn[j, 0], sn[j, 1], snames[t], slens[t])
        if k < 0 or got & (1 << k):
            return FALLBACK  # unknown or repeated signal name
        got |= 1 << k
        signals[i, k] = sv[j]
    return OK


@njit(nogil=True, cache=True)
def parse_batch(buf: U8, starts: np.ndarray, ends: np.ndarray, kbuf: U8, kstarts: np.ndarray,
                kends: np.ndarray, tnames: U8, tlens: np.ndarray, snames: np.ndarray,
                slens: np.ndarray, max_bytes: int, max_ts: int, status: np.ndarray,
                ints: np.ndarray, floats: np.ndarray, signals: np.ndarray,
                spans: np.ndarray) -> int:
    """Parse messages buf[starts[i]:ends[i]] into row i of the output arrays (written in place);
    status[i] = OK or FALLBACK. kstarts[i] < 0: no Kafka key, else it must equal the device id.
    tnames/tlens: device-type names; snames[t]/slens[t]: type t's signal names by signal index.
    Returns the number of OK messages."""
    n = starts.shape[0]
    sn = np.empty((signals.shape[1], 2), dtype=np.int64)
    sv = np.empty(signals.shape[1])
    n_ok = 0
    for i in range(n):
        ints[i, C_TS], ints[i, C_SEQ], ints[i, C_TYPE], ints[i, C_PORT] = 0, 0, 0, -1
        floats[i, :] = 0.0
        signals[i, :] = np.nan
        spans[i, :] = -1
        s, e = starts[i], ends[i]
        st = FALLBACK
        if s >= 0 and 0 < e - s <= max_bytes:
            st = _message(buf, s, e, i, tnames, tlens, snames, slens, max_ts, ints, floats, signals,
                          spans, sn, sv)
        if st == OK and kstarts[i] >= 0:
            ds, de = spans[i, SP_DEV], spans[i, SP_DEV + 1]
            ks = kstarts[i]
            if kends[i] - ks != de - ds:
                st = FALLBACK
            else:
                for j in range(de - ds):
                    if kbuf[ks + j] != buf[ds + j]:
                        st = FALLBACK
                        break
        status[i] = st
        if st == OK:
            n_ok += 1
    return n_ok


@_helper
def _intern_column(buf: U8, spans: np.ndarray, col: int, j: int, table: np.ndarray,
                   codes: np.ndarray, reps: np.ndarray, base: int) -> int:
    """Codes of span column `col` into codes[:, j]; first rows of new values appended to reps from
    `base`; returns the number of distinct values."""
    n = spans.shape[0]
    mask = table.shape[0] - 1
    table[:] = -1
    nu = 0
    for i in range(n):
        s, e = spans[i, col], spans[i, col + 1]
        if s < 0:
            codes[i, j] = -1
            continue
        h = e - s
        for q in range(s, e):
            h = (h * 257 + int(buf[q])) & 0x3FFFFFFF
        slot = ((h * 0x9E3779B1) >> 20) & mask  # spread similar ids (sequential suffixes)
        while True:
            c = table[slot]
            if c < 0:
                table[slot] = nu
                reps[base + nu] = i
                codes[i, j] = nu
                nu += 1
                break
            r = reps[base + c]
            rs, re_ = spans[r, col], spans[r, col + 1]
            if re_ - rs == e - s:
                q = 0
                while q < e - s and buf[rs + q] == buf[s + q]:
                    q += 1
                if q == e - s:
                    codes[i, j] = c
                    break
            slot = (slot + 1) & mask
    return nu


@njit(nogil=True, cache=True)
def intern_columns(buf: U8, spans: np.ndarray, cols: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dedup string span columns (spans[:, c:c+2] for c in cols) by exact bytes: (codes [n, k], code
    -1 where start < 0; first row of each distinct value, column after column; distinct count per
    column). Open addressing over byte comparison, so no hash collision can merge two values."""
    n, k = spans.shape[0], cols.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    table = np.empty(size, dtype=np.int64)
    codes = np.empty((n, k), dtype=np.int64)
    reps = np.empty(n * k, dtype=np.int64)
    counts = np.zeros(k, dtype=np.int64)
    base = 0
    for j in range(k):
        counts[j] = _intern_column(buf, spans, cols[j], j, table, codes, reps, base)
        base += counts[j]
    return codes, reps[:base], counts


@njit(nogil=True, cache=True)
def hex_equals(buf: U8, starts: np.ndarray, ends: np.ndarray, digests: U8) -> np.ndarray:
    """Per row: is buf[starts[i]:ends[i]] exactly the lowercase hex of digests[i] (hexdigest ==)?"""
    n = starts.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        s = starts[i]
        if ends[i] - s != 2 * digests.shape[1]:
            continue
        ok = True
        for j in range(digests.shape[1]):
            b = int(digests[i, j])
            for half in range(2):
                x = (b >> 4) if half == 0 else (b & 15)
                want = 48 + x if x < 10 else 87 + x
                if buf[s + 2 * j + half] != want:
                    ok = False
                    break
            if not ok:
                break
        out[i] = ok
    return out
