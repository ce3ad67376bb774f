"""Per-device risk score kept in twin state: a decaying history of detections plus exposure.

    risk = 100 * (1 - prod_k (1 - p_k))

a noisy-OR: each component p_k is read as an independent chance that the device is, or is about to
be, compromised, and the score is the chance that at least one of them is right. In [0, 100].

| component     | p_k                                                                            |
|---------------|--------------------------------------------------------------------------------|
| detections    | 0.95 * D / (D + D_half); D = sum of the device's threat severity points (low 1, |
|               | medium 2, high 4, critical 8), each halved per half-life of event time since   |
| intel contact | w * N / (N + 1); N = decayed count of events to or from intel-listed addresses, |
|               | w = 0.2 / 0.4 / 0.6 / 0.8 for the worst listed severity low/medium/high/critical|
| firmware      | intel-listed as vulnerable: 0.1 / 0.2 / 0.35 / 0.5 by severity; not on the      |
|               | type's allowlist: 0.5; older than the newest allowlisted version: 0.1           |
| services      | 0.3 * E / (E + E_half); E = distinct destination ports beyond the first, seen   |
|               | over the last one to two half-lives (a 64-bit sketch per device)               |
| logins        | 0.3 * A / (A + A_half); A = decayed inbound auth attempts (failures + successes)|

Evidence (detections, intel contact) weighs up to 0.95 / 0.8, exposure alone at most 0.5 per
component: with the default D_half = 2 one high-severity detection (0.63) outranks a critical
vulnerability (0.5), which outranks one medium detection (0.48). D_half, E_half, A_half and the
half-life are `[risk]` settings. Ages are event time (up to the device's last event), so a replay
scores like the live run, on any number of workers. State: 6 floats and 2 uint64 per device.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numba import njit

from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.intel.table import IntelIndex
from twinguard.operators.settings import RiskConfig
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import R_AUTH, R_DET, R_INTEL, R_INTEL_W, R_PORT_GEN, R_TREF
from twinguard.schemas.device_types import DeviceType
from twinguard.schemas.features import THREAT_CLASSES

if TYPE_CHECKING:
    from twinguard.operators.twin.store import TwinStore

I64 = npt.NDArray[np.int64]
SEVERITY_POINTS = {"low": 1.0, "medium": 2.0, "high": 4.0, "critical": 8.0}
CONTACT_WEIGHT = {"low": 0.2, "medium": 0.4, "high": 0.6, "critical": 0.8}
VULNERABLE_FW_WEIGHT = {"low": 0.1, "medium": 0.2, "high": 0.35, "critical": 0.5}
DETECTION_CAP = 0.95
UNKNOWN_FW, OUTDATED_FW = 0.5, 0.1
EXPOSURE_CAP = 0.3  # services and logins
MAX_REASONS = 4
MIN_REASON_P = 0.005  # components worth less than half a point are not worth a line
SKETCH_BITS = 64


def half_life_ms(cfg: RiskConfig) -> float:
    return cfg.half_life_h * 3_600_000.0


@njit(cache=True, nogil=True)
def _add(risk, s, col, x, t, half_ms):  # type: ignore[no-untyped-def]
    """In place: add x at event time t to a decayed accumulator. The accumulators of a device share
    one reference time: a later t moves it forward (decaying all), an earlier one is discounted."""
    tref = risk[s, R_TREF]
    if t >= tref:
        f = 2.0 ** (-(t - tref) / half_ms)
        risk[s, R_DET] *= f
        risk[s, R_INTEL] *= f
        risk[s, R_AUTH] *= f
        risk[s, R_TREF] = t
        risk[s, col] += x
    else:
        risk[s, col] += x * 2.0 ** (-(tref - t) / half_ms)


@njit(cache=True, nogil=True)
def _observe(slots, ts, dst_port, auth, risk, ports, half_ms):  # type: ignore[no-untyped-def]
    """In place, per event: the destination-port sketch (two generations of one half-life each)
    and the decayed count of inbound auth attempts."""
    for i in range(slots.size):
        s, t = slots[i], ts[i]
        if dst_port[i] >= 0:
            age = t - risk[s, R_PORT_GEN]
            if age >= half_ms:
                ports[s, 1] = ports[s, 0] if age < 2 * half_ms else np.uint64(0)
                ports[s, 0] = np.uint64(0)
                risk[s, R_PORT_GEN] = t
            ports[s, 0] |= np.uint64(1) << np.uint64(dst_port[i] & 63)
        if auth[i] > 0:
            _add(risk, s, R_AUTH, auth[i], t, half_ms)


def observe(store: TwinStore, slots: I64, batch: TelemetryBatch, intel: IntelIndex,
            cfg: RiskConfig, authentic: npt.NDArray[np.bool_] | None = None) -> None:
    """Fold a batch's exposure evidence in: ports, inbound logins, intel-listed contacts. Only
    `authentic` events count (all when None): a forger must not raise a device's risk with
    claimed logins, ports or contacts (its traffic counts as tampering instead)."""
    if authentic is not None and not authentic.all():
        keep = np.flatnonzero(authentic)
        slots, batch = slots[keep], batch.take(keep)
    if len(batch) == 0:
        return
    a, half = store.arrays, half_life_ms(cfg)
    _observe(slots, batch.ts, batch.dst_port, batch.auth_fail + batch.auth_ok, a["risk"],
             a["risk_ports"], half)
    for hit in intel.match_rows(batch.src_ips, batch.dst_ips, batch.ts):
        s, t = int(slots[hit.row]), int(batch.ts[hit.row])
        _add(a["risk"], s, R_INTEL, 1.0, t, half)
        w = CONTACT_WEIGHT[hit.entry.severity]
        if w >= a["risk"][s, R_INTEL_W]:
            a["risk"][s, R_INTEL_W] = w
            store.intel_hits[s] = (hit.address, hit.entry.severity, hit.entry.note, t)


def record_detection(store: TwinStore, s: int, severity: str, at_ms: int, cfg: RiskConfig) -> None:
    """A threat on device slot `s` at event time `at_ms` adds its severity points."""
    _add(store.arrays["risk"], s, R_DET, SEVERITY_POINTS.get(severity, 2.0), at_ms,
         half_life_ms(cfg))


def threat_reasons(store: TwinStore, s: int, at_ms: int, cfg: RiskConfig) -> list[str]:
    """The intel reason to add to a threat of slot `s`: a listed contact within one half-life."""
    hit = store.intel_hits.get(s)
    if hit is None or at_ms - hit[3] > half_life_ms(cfg):
        return []
    address, severity, note, _ = hit
    return [f"intel: traffic with {address}, listed as {severity}" + (f" ({note})" if note else "")]


def _decayed(value: float, tref: float, now: float, half_ms: float) -> float:
    return value * math.pow(2.0, -max(now - tref, 0.0) / half_ms) if value > 0 else 0.0


def _sat(x: float, half: float) -> float:
    """x / (x + half): 0 at 0, 1/2 at `half`, towards 1 beyond."""
    return x / (x + half) if x > 0 else 0.0


def distinct_ports(current: int, previous: int, age_ms: float, half_ms: float) -> float:
    """Linear-counting estimate of distinct ports in the sketch generations still in range."""
    bits = current | previous if age_ms < half_ms else current if age_ms < 2 * half_ms else 0
    b = bits.bit_count()
    if b >= SKETCH_BITS:
        return SKETCH_BITS * math.log(SKETCH_BITS)
    return -SKETCH_BITS * math.log(1.0 - b / SKETCH_BITS)


@functools.lru_cache(maxsize=256)
def newest_firmware(allowlist: tuple[str, ...]) -> str | None:
    """The highest version on an allowlist, comparing the numbers in it (V3.3.16 > V3.3.14)."""
    if not allowlist:
        return None
    return max(allowlist, key=lambda v: ([int(n) for n in re.findall(r"\d+", v)], v))


def firmware_exposure(dt: DeviceType, fw: str | None, intel: IntelIndex, now: int
                      ) -> tuple[float, str]:
    if fw is None:
        return 0.0, ""
    e = intel.lookup_firmware(dt.name, fw, now)
    if e is not None:
        return (VULNERABLE_FW_WEIGHT[e.severity],
                f"firmware {fw} vulnerable ({e.severity}{': ' + e.note if e.note else ''})")
    if dt.firmware and fw not in dt.firmware:
        return UNKNOWN_FW, f"firmware {fw} not on the {dt.name} allowlist"
    newest = newest_firmware(dt.firmware)
    if newest is not None and fw != newest:
        return OUTDATED_FW, f"firmware {fw} outdated (newest {newest})"
    return 0.0, ""


def assess(store: TwinStore, s: int, dt: DeviceType, intel: IntelIndex, cfg: RiskConfig
           ) -> tuple[float, list[str]]:
    """(risk in [0, 100], top reasons, most important first) of device slot `s` as of its last
    event (its own time, so the score does not depend on which devices share its shard).

    The readable definition, one slot at a time; twins use its bulk form `assess_many`, which a
    property test holds to exactly these floats."""
    a, half = store.arrays, half_life_ms(cfg)
    tref, det, contacts, logins, contact_w, port_gen = a["risk"][s].tolist()
    now = max(float(a["istate"][s, K.I_LAST_TS]), tref)
    parts: list[tuple[float, str]] = []
    det = _decayed(det, tref, now, half)
    if det > 0:
        n, cls = int(a["threats_total"][s]), int(a["last_threat"][s, 0])
        last = f", last {THREAT_CLASSES[cls]}" if cls > 0 else ""
        parts.append((DETECTION_CAP * _sat(det, cfg.detection_half_points),
                      f"{n} threat{'s' if n != 1 else ''} detected{last}"))
    contacts = _decayed(contacts, tref, now, half)
    hit = store.intel_hits.get(s)
    if contacts > 0 and hit is not None:
        parts.append((contact_w * _sat(contacts, 1.0), f"traffic with intel-listed {hit[0]} ({hit[1]})"))
    parts.append(firmware_exposure(dt, store.fws[s], intel, int(now)))
    current, previous = a["risk_ports"][s].tolist()
    ports = distinct_ports(current, previous, now - port_gen, half)
    if ports > 1.5:
        parts.append((EXPOSURE_CAP * _sat(ports - 1, cfg.ports_half_extra),
                      f"~{ports:.0f} destination ports in use"))
    logins = _decayed(logins, tref, now, half)
    if logins > 0:
        parts.append((EXPOSURE_CAP * _sat(logins, cfg.auth_half_attempts),
                      f"{logins:.0f} recent inbound auth attempt{'s' if round(logins) != 1 else ''}"))
    return score(p for p, _ in parts), [
        why for p, why in sorted(parts, key=lambda x: -x[0]) if p >= MIN_REASON_P][:MAX_REASONS]


def assess_many(store: TwinStore, slots: I64, types: tuple[DeviceType, ...], intel: IntelIndex,
                cfg: RiskConfig) -> list[tuple[float, list[str]]]:
    """`assess` of many slots, with the same floats: the decays, saturations and the noisy-OR's
    order of products in bulk, a Python step per slot only for firmware (an intel lookup) and the
    rounding, strings only for reasons that make the list. Twins of a whole fleet are assessed
    every emit interval, and per slot `assess` was two thirds of a twin's cost."""
    with np.errstate(divide="ignore", invalid="ignore"):  # the rows np.where drops
        return _assess_many(store, slots, types, intel, cfg)


def _assess_many(store: TwinStore, slots: I64, types: tuple[DeviceType, ...], intel: IntelIndex,
                 cfg: RiskConfig) -> list[tuple[float, list[str]]]:
    a, half = store.arrays, half_life_ms(cfg)
    r = a["risk"][slots]
    tref = r[:, R_TREF]
    now = np.maximum(a["istate"][slots, K.I_LAST_TS].astype(np.float64), tref)
    decay = np.power(2.0, -(now - tref) / half)
    det, contacts, logins = (np.where(r[:, c] > 0, r[:, c] * decay, 0.0)
                             for c in (R_DET, R_INTEL, R_AUTH))
    hit = np.array([s in store.intel_hits for s in slots.tolist()], dtype=bool)
    p_det = np.where(det > 0, DETECTION_CAP * (det / (det + cfg.detection_half_points)), 0.0)
    p_contact = np.where((contacts > 0) & hit, r[:, R_INTEL_W] * (contacts / (contacts + 1.0)), 0.0)
    ports = _PORTS_BY_BITS[_sketch_bits(a["risk_ports"][slots], now - r[:, R_PORT_GEN], half)]
    p_ports = np.where(ports > 1.5, EXPOSURE_CAP * ((ports - 1) / (ports - 1 + cfg.ports_half_extra)),
                       0.0)
    p_logins = np.where(logins > 0, EXPOSURE_CAP * (logins / (logins + cfg.auth_half_attempts)), 0.0)
    keep_before_fw = (1.0 - np.clip(p_det, 0.0, 1.0)) * (1.0 - np.clip(p_contact, 0.0, 1.0))
    keep_ports, keep_logins = 1.0 - np.clip(p_ports, 0.0, 1.0), 1.0 - np.clip(p_logins, 0.0, 1.0)
    cols = [x.tolist() for x in (slots, a["istate"][slots, K.I_TYPE], now, keep_before_fw,
                                 keep_ports, keep_logins, p_det, p_contact, p_ports, p_logins,
                                 ports, logins)]
    out = []
    for s, t, t_now, k0, k_ports, k_logins, pd, pc, pp, pl, n_ports, n_logins in zip(
            *cols, strict=True):
        p_fw, why_fw = firmware_exposure(types[t], store.fws[s], intel, int(t_now))
        keep = k0 * (1.0 - min(max(p_fw, 0.0), 1.0)) * k_ports * k_logins
        reasons: list[tuple[float, str]] = []
        if pd >= MIN_REASON_P:
            n, cls = int(a["threats_total"][s]), int(a["last_threat"][s, 0])
            last = f", last {THREAT_CLASSES[cls]}" if cls > 0 else ""
            reasons.append((pd, f"{n} threat{'s' if n != 1 else ''} detected{last}"))
        if pc >= MIN_REASON_P:
            h = store.intel_hits[s]
            reasons.append((pc, f"traffic with intel-listed {h[0]} ({h[1]})"))
        if p_fw >= MIN_REASON_P:
            reasons.append((p_fw, why_fw))
        if pp >= MIN_REASON_P:
            reasons.append((pp, f"~{n_ports:.0f} destination ports in use"))
        if pl >= MIN_REASON_P:
            reasons.append((pl, f"{n_logins:.0f} recent inbound auth attempt"
                                f"{'s' if round(n_logins) != 1 else ''}"))
        reasons.sort(key=lambda x: -x[0])
        out.append((round(100.0 * (1.0 - keep), 1), [why for _, why in reasons][:MAX_REASONS]))
    return out


def _sketch_bits(ports: npt.NDArray[np.uint64], age_ms: npt.NDArray[np.float64], half_ms: float
                 ) -> I64:
    """Set bits of the port-sketch generations still in range (as distinct_ports reads them)."""
    bits = np.where(age_ms < half_ms, ports[:, 0] | ports[:, 1],
                    np.where(age_ms < 2 * half_ms, ports[:, 0], np.uint64(0)))
    return np.bitwise_count(bits).astype(np.int64)


# distinct_ports by number of set bits, from the scalar formula itself (so the same floats)
_PORTS_BY_BITS = np.array([distinct_ports((1 << b) - 1, 0, 0.0, 1.0) for b in range(SKETCH_BITS + 1)])


def score(components: Iterable[float]) -> float:
    """Noisy-OR of component probabilities, as 0..100 with one decimal."""
    keep = 1.0
    for p in components:
        keep *= 1.0 - min(max(float(p), 0.0), 1.0)
    return round(100.0 * (1.0 - keep), 1)
