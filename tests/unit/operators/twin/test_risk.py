"""Risk score: the documented formula (noisy-OR, decay, exposure) and its wiring through ShardEngine."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass

import msgspec
import numpy as np
import pytest

from tests.support.batches import telemetry_batch
from tests.support.devices import METER, TYPES
from tests.support.engines import rules_engine
from twinguard.operators.batches import TelemetryBatch
from twinguard.operators.decode.hashing import string_hashes
from twinguard.operators.integrity.signatures import SIG_OK
from twinguard.operators.intel.table import IntelTable, parse_intel
from twinguard.operators.settings import RiskConfig
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin import layout as L
from twinguard.operators.twin import risk as R
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.device_types import MAX_SIGNALS
from twinguard.schemas.messages import TwinState

METER_TYPE = TYPES.types[METER]
CFG = RiskConfig()
HALF = R.half_life_ms(CFG)
BASE = 1_700_000_000_000


def intel(*lines: str) -> IntelTable:
    entries = [parse_intel(line.encode()) for line in lines]
    return IntelTable([e for e in entries if e is not None])


def test_score_is_a_noisy_or_in_0_100() -> None:
    assert R.score([]) == 0.0
    assert R.score([0.5]) == 50.0
    assert R.score([0.5, 0.5]) == 75.0
    assert R.score([1.5, -1.0]) == 100.0  # out-of-range components are clamped


def test_detections_decay_with_the_half_life_and_late_ones_are_discounted() -> None:
    store = TwinStore(len(TYPES), 5)
    store.slots_for(["m"], np.array([METER]))
    R.record_detection(store, 0, "high", BASE, CFG)  # 4 points
    store.arrays["istate"][0, K.I_LAST_TS] = BASE
    d = 4.0
    assert R.assess(store, 0, METER_TYPE, IntelIndexEmpty, CFG)[0] == pytest.approx(
        100 * 0.95 * d / (d + CFG.detection_half_points), abs=0.05)
    store.arrays["istate"][0, K.I_LAST_TS] = BASE + int(HALF)  # a half-life later: half the points
    d = 2.0
    assert R.assess(store, 0, METER_TYPE, IntelIndexEmpty, CFG)[0] == pytest.approx(
        100 * 0.95 * d / (d + CFG.detection_half_points), abs=0.05)
    R.record_detection(store, 0, "medium", BASE + int(HALF), CFG)  # moves the reference time
    row = store.arrays["risk"][0]
    assert row[L.R_DET] == pytest.approx(2.0 + 2.0) and row[L.R_TREF] == BASE + int(HALF)
    R.record_detection(store, 0, "critical", BASE, CFG)  # arrives late: 8 points, a half-life old
    assert row[L.R_DET] == pytest.approx(4.0 + 4.0) and row[L.R_TREF] == BASE + int(HALF)


IntelIndexEmpty = IntelTable().current


@pytest.mark.parametrize(("allowlist", "newest"), [
    (("V3.3.14", "V3.3.16"), "V3.3.16"), (("9.9", "10.0"), "10.0"), (("4.2.0", "4.3.0", "4.2.1"), "4.3.0"),
    ((), None)])
def test_newest_firmware_compares_version_numbers(allowlist: tuple[str, ...], newest: str | None
                                                  ) -> None:
    assert R.newest_firmware(allowlist) == newest


def test_firmware_exposure_levels() -> None:
    idx = intel('{"indicator": "smart_meter:7.0.3", "kind": "firmware", "severity": "critical", '
                '"note": "CVE-X"}').current
    assert R.firmware_exposure(METER_TYPE, "7.0.3", idx, 0) == (
        R.VULNERABLE_FW_WEIGHT["critical"], "firmware 7.0.3 vulnerable (critical: CVE-X)")
    assert R.firmware_exposure(METER_TYPE, "7.0.3", IntelIndexEmpty, 0)[0] == R.OUTDATED_FW
    assert R.firmware_exposure(METER_TYPE, "6.6.6", IntelIndexEmpty, 0)[0] == R.UNKNOWN_FW
    assert R.firmware_exposure(METER_TYPE, "7.1.0", IntelIndexEmpty, 0) == (0.0, "")
    assert R.firmware_exposure(METER_TYPE, None, IntelIndexEmpty, 0) == (0.0, "")


def test_port_sketch_counts_distinct_ports_and_forgets_old_generations() -> None:
    assert R.distinct_ports(0b1, 0, 0, HALF) == pytest.approx(1.0, abs=0.01)
    assert R.distinct_ports(0b1, 0b110, 0, HALF) == pytest.approx(3.0, abs=0.1)
    assert R.distinct_ports(0b1, 0b110, HALF, HALF) == pytest.approx(1.0, abs=0.01)  # previous expired
    assert R.distinct_ports(0b1, 0b110, 2 * HALF, HALF) == 0.0
    assert R.distinct_ports(2**64 - 1, 0, 0, HALF) == pytest.approx(64 * math.log(64))


# ---- through the engine


@dataclass
class Ev:
    device: str
    ts: int
    dst_ip: str = "10.0.0.10"
    fw: str = "7.1.0"
    auth_fail: float = 0.0
    port: int = 8883


def batch_of(events: list[Ev]) -> TelemetryBatch:
    """Meters at 1 Hz from 10.1.0.2, steady 200 B out, signed; the events set address, firmware,
    failed logins and port."""
    sig = np.full((len(events), MAX_SIGNALS), np.nan)
    for i, e in enumerate(events):
        sig[i, :4] = (230.0, 10.0, 230.0 * 10.0 * 0.9, 100.0 + e.ts / 1e9)
    return telemetry_batch(
        [e.device for e in events], METER, [e.ts for e in events],
        [e.ts // 1000 for e in events], sig,  # seq per device, 1 Hz
        src_ips="10.1.0.2", dst_ips=[e.dst_ip for e in events], fws=[e.fw for e in events],
        bytes_in=80.0, bytes_out=200.0, auth_fail=[e.auth_fail for e in events],
        dst_port=[e.port for e in events], src_hash=7, dst_hash=string_hashes([e.dst_ip for e in events]),
        sig_state=SIG_OK)


def fleet_events() -> list[Ev]:
    """Four meters at 1 Hz for 40 s: clean; talking to a listed address; old firmware and a
    brute-force burst; both (the burst's threat must name the intel contact)."""
    events = []
    for k in range(40):
        t = BASE + k * 1000
        events += [Ev("clean", t), Ev("contact", t, dst_ip="203.0.113.5"),
                   Ev("brute", t, fw="7.0.3", auth_fail=5.0 if 20 <= k < 24 else 0.0),
                   Ev("both", t, dst_ip="203.0.113.5", auth_fail=5.0 if 20 <= k < 24 else 0.0)]
    return events


def run_engine(table: IntelTable) -> tuple[dict[str, TwinState], list[dict[str, object]]]:
    eng = rules_engine(now=lambda: BASE / 1000, intel=table, risk=CFG)
    events = fleet_events()
    out = []
    for k in range(0, len(events), 37):
        out += eng.process(batch_of(events[k:k + 37]))
    out += eng.flush()
    twins = {m.key.decode(): msgspec.json.decode(m.value, type=TwinState)
             for m in out if m.role == "twins"}
    threats = [json.loads(m.value) for m in out if m.role == "threats"]
    return twins, threats


def test_engine_ranks_evidence_and_exposure_and_names_intel_in_threats() -> None:
    table = intel('{"indicator": "203.0.113.0/24", "kind": "cidr", "severity": "critical", '
                  '"note": "drop servers"}')
    twins, threats = run_engine(table)
    risk = {d: t.risk for d, t in twins.items()}
    assert risk["clean"] == 0.0 and twins["clean"].risk_reasons == []
    assert risk["both"] > risk["contact"] > risk["brute"] > risk["clean"]
    assert twins["contact"].risk_reasons == ["traffic with intel-listed 203.0.113.5 (critical)"]
    reasons = twins["brute"].risk_reasons
    assert reasons[0] == "1 threat detected, last brute_force"
    assert "firmware 7.0.3 outdated (newest 7.1.0)" in reasons
    assert any("inbound auth attempts" in r for r in reasons)
    by_device = {t["device_id"]: t for t in threats}
    assert set(by_device) == {"brute", "both"}
    intel_reason = "intel: traffic with 203.0.113.5, listed as critical (drop servers)"
    assert intel_reason in by_device["both"]["reasons"]
    assert not any(r.startswith("intel:") for r in by_device["brute"]["reasons"])


def test_without_intel_contacts_do_not_count_and_ids_do_not_change() -> None:
    listed = intel('{"indicator": "203.0.113.0/24", "kind": "cidr", "severity": "critical"}')
    twins, threats = run_engine(IntelTable())
    assert twins["contact"].risk == 0.0
    _, threats_listed = run_engine(listed)
    assert sorted(t["id"] for t in threats) == sorted(t["id"] for t in threats_listed)


def test_risk_state_survives_a_snapshot() -> None:
    store = TwinStore(len(TYPES), 5)
    store.slots_for(["m"], np.array([METER]))
    R.record_detection(store, 0, "medium", BASE, CFG)
    store.intel_hits[0] = ("203.0.113.5", "high", "", BASE)
    snap = pickle.loads(pickle.dumps(store.snapshot()))
    R.record_detection(store, 0, "medium", BASE, CFG)
    store.intel_hits.clear()
    assert snap.arrays["risk"][0, L.R_DET] == 2.0 and snap.intel_hits[0][0] == "203.0.113.5"


def test_a_snapshot_from_before_the_risk_state_is_upgraded_on_resume() -> None:
    store = TwinStore(len(TYPES), 5)
    store.slots_for(["m", "n"], np.array([METER, METER]))
    old = store.snapshot()
    del old.arrays["risk"], old.arrays["risk_ports"], old.__dict__["intel_hits"]
    restored = pickle.loads(pickle.dumps(old)).upgrade()
    assert restored.arrays["risk"].shape == (2, L.N_RISK) and restored.intel_hits == {}
    R.record_detection(restored, 1, "high", BASE, CFG)
    assert restored.slots_for(["o"], np.array([METER]))[0] == 2 and restored.arrays["risk"][1, L.R_DET] == 4


def test_twin_state_without_risk_fields_still_decodes() -> None:
    """Twins written before the risk fields existed read as risk 0 with no reasons."""
    old = {"device_id": "m", "device_type": "smart_meter", "version": 1, "last_seen": 1, "seq": 1,
           "fw": None, "src_ip": None, "reported": {}, "status": "learning", "threats_total": 0,
           "last_threat": None, "baseline_windows": 0, "updated_at": 1, "schema_version": 1}
    twin = msgspec.json.decode(json.dumps(old).encode(), type=TwinState)
    assert twin.risk == 0.0 and twin.risk_reasons == []


@pytest.mark.parametrize("seed", range(5))
def test_assess_many_equals_assess_per_slot(seed: int) -> None:
    """The bulk assessment twins use gives exactly the scalar reference's scores and reasons."""
    rng = np.random.default_rng(seed)
    n = 300
    store = TwinStore(len(TYPES), 5)
    store.slots_for([f"d{i}" for i in range(n)], rng.integers(0, len(TYPES), n))
    a = store.arrays
    last_ts = BASE + rng.integers(0, 3 * int(HALF), n)
    a["istate"][:n, K.I_LAST_TS] = last_ts
    sparse = rng.random((n, 4)) < 0.5  # many devices with no evidence of a kind at all
    a["risk"][:n, L.R_TREF] = last_ts - rng.integers(-int(HALF), 2 * int(HALF), n)
    a["risk"][:n, L.R_DET] = np.where(sparse[:, 0], 0.0, rng.exponential(3.0, n))
    a["risk"][:n, L.R_INTEL] = np.where(sparse[:, 1], 0.0, rng.exponential(2.0, n))
    a["risk"][:n, L.R_AUTH] = np.where(sparse[:, 2], 0.0, rng.exponential(15.0, n))
    a["risk"][:n, L.R_INTEL_W] = rng.choice(list(R.CONTACT_WEIGHT.values()), n)
    a["risk"][:n, L.R_PORT_GEN] = last_ts - rng.integers(0, 3 * int(HALF), n)
    a["risk_ports"][:n] = np.where(sparse[:, 3:], 0, rng.integers(0, 2**63, (n, 2))).astype(
        np.uint64)
    a["threats_total"][:n] = rng.integers(0, 5, n)
    a["last_threat"][:n, 0] = rng.integers(-1, 4, n)
    for s in range(n):
        dt = TYPES.types[int(a["istate"][s, K.I_TYPE])]
        fw = rng.choice([None, "6.6.6", "7.0.3", *sorted(dt.firmware)])
        store.fws[s] = None if fw is None else str(fw)
        if rng.random() < 0.3:
            store.intel_hits[s] = ("203.0.113.9", "high", "", int(last_ts[s]))
    idx = intel('{"indicator": "smart_meter:7.0.3", "kind": "firmware", "severity": "critical", '
                '"note": "CVE-X"}').current
    slots = rng.permutation(n)
    want = [R.assess(store, s, TYPES.types[int(a["istate"][s, K.I_TYPE])], idx, CFG)
            for s in slots.tolist()]
    assert R.assess_many(store, slots, TYPES.types, idx, CFG) == want
    assert any(len(r) > 1 for _, r in want) and any(not r for _, r in want)
