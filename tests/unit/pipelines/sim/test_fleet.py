"""FleetSimulator and attack labels: determinism, wire contract, physics, attack evidence, label files."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tests.support.devices import KEYS, TYPES
from tests.support.fleet import SMALL_FLEET, START_MS, Recording, SentMessage, record
from twinguard.operators.integrity.signatures import SIG_BAD, SIG_MISSING, SIG_OK, KeyRing
from twinguard.pipelines.sim.fleet import ATTACK_CLASSES, BROKERS, FleetSimulator, SimConfig
from twinguard.pipelines.sim.labels import AttackLabel, LabelError, read_labels, write_labels
from twinguard.schemas.device_types import DeviceType, build_table, parse_device_type
from twinguard.schemas.messages import Telemetry, canonical_bytes

START = START_MS


def simulate(max_events: int = 5000, **kw: object) -> Recording:
    """Run a simulation (from START unless told) to the end and decode every message."""
    kw.setdefault("start_ms", START)
    return record(SimConfig(**kw), TYPES, KEYS, max_events)  # type: ignore[arg-type]


def violations(dt: DeviceType, evs: list[Telemetry]) -> list[str]:
    """Range, rate-of-change and invariant violations in one device's messages (time order)."""
    out: list[str] = []
    prev: Telemetry | None = None
    for ev in evs:
        for s in dt.signals:
            x = ev.signals[s.name]
            if not s.min <= x <= s.max:
                out.append(f"{ev.device_id}@{ev.ts}: {s.name}={x} outside [{s.min}, {s.max}]")
            if prev is not None and ts_of(ev) > ts_of(prev):
                rate = (x - prev.signals[s.name]) * 1000.0 / (ts_of(ev) - ts_of(prev))
                if not s.roc_min <= rate <= s.roc_max:
                    out.append(f"{ev.device_id}@{ev.ts}: {s.name} changes at {rate:.4g}/s")
        for inv in dt.invariants:
            a, b = ev.signals[inv.a], ev.signals[inv.b]
            if inv.kind == "ratio_between":
                den = b * (ev.signals[inv.c] if inv.c else 1.0)
                if abs(den) >= inv.min_denominator and not inv.lo <= a / den <= inv.hi:
                    out.append(f"{ev.device_id}@{ev.ts}: {inv.a}/{inv.b}{inv.c} = {a / den:.4g}")
            elif b < 0.5 and a > inv.tol:
                out.append(f"{ev.device_id}@{ev.ts}: {inv.a}={a} while {inv.b}={b}")
        prev = ev
    return out


def ts_of(ev: Telemetry) -> int:
    """The event time; the simulator always writes epoch ms."""
    assert isinstance(ev.ts, int)
    return ev.ts


def stream(run: Recording) -> tuple[list[bytes], list[bytes], list[int]]:
    """Keys, values and send times of a whole run."""
    return ([m.key for m in run.msgs], [m.value for m in run.msgs], [m.sent for m in run.msgs])


# ------------------------------------------------------------------------------ determinism, wire


def test_same_seed_gives_identical_bytes(small_fleet: Recording) -> None:
    again = record(SMALL_FLEET, small_fleet.sim.types, small_fleet.sim.keyring, max_events=777)
    assert stream(again) == stream(small_fleet)
    assert again.sim.labels == small_fleet.sim.labels
    assert all(len(b) == 777 for b in again.batches[:-1])
    # the same simulator object replays identically too
    second = [v for b in small_fleet.sim.batches() for v in b.values]
    assert second == [m.value for m in small_fleet.msgs]
    other = record(replace(SMALL_FLEET, seed=12), small_fleet.sim.types, small_fleet.sim.keyring)
    assert [m.value for m in other.msgs] != [m.value for m in small_fleet.msgs]


def test_every_message_is_a_telemetry_record(small_fleet: Recording) -> None:
    sent = np.concatenate([b.ts_ms for b in small_fleet.batches])
    assert sent.dtype == np.int64 and np.all(np.diff(sent) >= 0)
    assert sent[0] >= START and sent[-1] < START + 60_000
    ids = {d for d, _t in small_fleet.sim.devices}
    for m in small_fleet.msgs:
        assert m.key == m.ev.device_id.encode() and m.ev.device_id in ids
        assert m.ev.type == dict(small_fleet.sim.devices)[m.ev.device_id]
        assert set(m.ev.signals) == set(small_fleet.dtype(m.ev.device_id).signal_index())
        assert m.ev.net is not None and m.ev.auth is not None and m.ev.fw
        # values are msgspec's sorted-key encoding of the (signed) event
        assert m.value == msgspec.json.encode(m.ev, order="sorted")
    assert len(small_fleet.msgs) == pytest.approx(small_fleet.sim.expected_events(), rel=0.02)


def test_device_ids_types_and_identity(small_fleet: Recording) -> None:
    counts: defaultdict[str, int] = defaultdict(int)
    for did, tname in small_fleet.sim.devices:
        assert did.startswith(tname + "-") and len(did) == len(tname) + 7
        counts[tname] += 1
    assert set(counts) == {t.name for t in TYPES.types} and max(counts.values()) == 8


def test_unsigned_mode_has_no_signatures() -> None:
    run = simulate(devices=10, duration_s=5.0, sign=False, attack_fraction=0.0)
    assert run.msgs and all(m.ev.sig is None for m in run.msgs)


# ------------------------------------------------------------------------------- healthy physics


def lookalike_ids(run: Recording) -> set[str]:
    """Unattacked devices with a benign change (address, firmware update, traffic burst)."""
    la = run.sim._lookalikes
    return {run.sim.devices[d][0] for d in (*la.ip_change, *la.fw_update, *la.bursts)}


def healthy_ids(run: Recording) -> list[str]:
    """Devices nobody attacks and nothing changes."""
    attacked = {lb.device_id for lb in run.sim.labels} | lookalike_ids(run)
    return [d for d, _t in run.sim.devices if d not in attacked]


def test_benign_lookalikes_change_one_thing_and_stay_healthy() -> None:
    run = simulate(devices=120, duration_s=60.0, seed=3, attack_fraction=0.0)
    la = run.sim._lookalikes
    assert la.ip_change and la.fw_update and la.bursts
    for d, (_at, ip) in la.ip_change.items():
        srcs = [m.ev.net.src_ip for m in run.of(run.sim.devices[d][0]) if m.ev.net]
        assert len(set(srcs)) == 2 and srcs[-1] == ip  # moved once, stayed
    for d, (_at, fw) in la.fw_update.items():
        evs = [m.ev for m in run.of(run.sim.devices[d][0])]
        allowed = TYPES.firmware[TYPES.index[run.sim.devices[d][1]]]
        assert evs[-1].fw == fw and {e.fw for e in evs} <= allowed
    for d in la.bursts:
        dt = run.dtype(run.sim.devices[d][0])
        assert violations(dt, [m.ev for m in run.of(run.sim.devices[d][0])]) == []


def test_healthy_devices_respect_ranges_roc_and_invariants(small_fleet: Recording) -> None:
    ids = healthy_ids(small_fleet)
    assert {dict(small_fleet.sim.devices)[d] for d in ids} == {t.name for t in TYPES.types}
    for did in ids:
        dt, msgs = small_fleet.dtype(did), small_fleet.of(did)
        evs = [m.ev for m in msgs]
        assert violations(dt, evs) == []
        ts = np.array([ts_of(m.ev) for m in msgs])
        assert ts.tolist() == [m.sent for m in msgs] and np.all(np.diff(ts) > 0)
        seqs = np.array([e.seq for e in evs])
        assert seqs[0] <= 1 and np.all((np.diff(seqs) > 0) & (np.diff(seqs) <= 2))
        assert {e.fw for e in evs} <= TYPES.firmware[TYPES.index[dt.name]] and len({e.fw for e in evs}) == 1
        nets = [e.net for e in evs if e.net is not None]
        assert len({(n.src_ip, n.dst_ip, n.dst_port) for n in nets}) == 1
        assert nets[0].dst_ip in BROKERS and nets[0].dst_port in dt.simulate["dst_ports"]
        assert nets[0].src_ip is not None and nets[0].src_ip.startswith("10.")
        assert all(n.connections in (1, 2) and n.bytes_out > 0 for n in nets)
        assert all(e.auth is not None and e.auth.failures <= 1 for e in evs)
        # report rate close to the type's nominal rate
        assert len(msgs) == pytest.approx(60 * dt.report_hz, abs=2)


def test_healthy_physics_is_coherent(small_fleet: Recording) -> None:
    for did in healthy_ids(small_fleet):
        evs = [m.ev for m in small_fleet.of(did)]
        sig = {k: np.array([e.signals[k] for e in evs]) for k in evs[0].signals}
        tname = evs[0].type
        if tname == "smart_meter":
            assert np.all(np.abs(sig["voltage_v"] - 230) <= 3.0)
            assert np.all((sig["current_a"] >= 0.5) & (sig["current_a"] <= 40))
            pf = sig["power_w"] / (sig["voltage_v"] * sig["current_a"])
            assert np.all((pf >= 0.85 - 1e-6) & (pf <= 0.98 + 1e-6))
            assert np.all(np.diff(sig["energy_kwh"]) >= 0) and np.any(np.diff(sig["energy_kwh"]) > 0)
        elif tname == "infusion_pump":
            assert len(set(sig["rate_ml_h"])) == 1
            assert np.all(np.diff(sig["volume_infused_ml"]) > 0)
            assert np.all(np.diff(sig["battery_pct"]) <= 0)
        elif tname == "ip_camera":
            assert len(set(sig["fps"])) == 1 and sig["fps"][0] in (15.0, 25.0, 30.0)
            per_frame = sig["bitrate_kbps"] / sig["fps"]
            assert np.all((per_frame >= 45) & (per_frame <= 250))
            assert np.all((sig["cpu_pct"] >= 20) & (sig["cpu_pct"] <= 60))
        elif tname == "pump_plc":
            assert np.all(sig["flow_lpm"][sig["pump_on"] == 0] <= 5.0)
            assert set(sig["pump_on"]) <= {0.0, 1.0}
        elif tname == "thermostat":
            assert set(sig["heating"]) <= {0.0, 1.0}
            assert np.all((sig["temperature_c"] > 5) & (sig["temperature_c"] < 30))


def test_fast_reporting_still_respects_roc_limits() -> None:
    run = simulate(devices=25, duration_s=4.0, rate=5000.0, attack_fraction=0.0, seed=3)
    for did, _t in run.sim.devices:
        msgs = run.of(did)
        assert len(msgs) > 700
        assert violations(run.dtype(did), [m.ev for m in msgs]) == []


def test_signatures_verify_for_healthy_messages(small_fleet: Recording) -> None:
    ids = set(healthy_ids(small_fleet))
    checked = 0
    keys = small_fleet.sim.keyring
    for m in small_fleet.msgs:
        if m.ev.device_id in ids:
            assert keys.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) == SIG_OK
            checked += 1
    assert checked > 1000
    wrong = KeyRing(b"another-master")
    m = next(m for m in small_fleet.msgs if m.ev.device_id in ids)
    assert wrong.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) == SIG_BAD


# ----------------------------------------------------------------------------------------- attacks


def test_every_attack_class_appears_with_few_devices() -> None:
    n = len(ATTACK_CLASSES)
    sim = FleetSimulator(SimConfig(devices=n, duration_s=60.0, start_ms=START), TYPES, KEYS)
    assert sorted(lb.threat for lb in sim.labels) == sorted(ATTACK_CLASSES)
    assert len({lb.device_id for lb in sim.labels}) == n
    for lb in sim.labels:
        assert START + 20_000 <= lb.start <= lb.end < START + 60_000
        if lb.threat == "firmware_tampering":
            assert lb.end >= START + 57_000
        else:
            assert lb.end - lb.start <= 20_000


def test_attack_fraction_and_class_subset() -> None:
    sim = FleetSimulator(SimConfig(devices=200, attack_fraction=0.1, attacks=("dos", "scan")),
                         TYPES, KEYS)
    assert len(sim.labels) == 20 and {lb.threat for lb in sim.labels} == {"dos", "scan"}
    assert sim.start_ms % 1000 == 0
    none = FleetSimulator(SimConfig(devices=20, attack_fraction=0.0), TYPES, KEYS)
    assert none.labels == []


def is_marked(threat: str, m: SentMessage, seen_seq: int, dt: DeviceType, usual_port: int | None) -> bool:
    """Whether one message carries the per-message mark of `threat`."""
    ev, net, auth = m.ev, m.ev.net, m.ev.auth
    assert net is not None and auth is not None
    if threat == "dos":
        return net.connections >= 5
    if threat == "scan":
        return net.dst_port != usual_port
    if threat == "brute_force":
        return auth.failures >= 2
    if threat == "exfiltration":
        return net.dst_ip not in BROKERS
    if threat == "replay":
        return ev.seq <= seen_seq
    if threat == "tampering":
        return KEYS.check(ev.device_id, canonical_bytes(ev), ev.sig) != SIG_OK
    if threat == "firmware_tampering":
        return ev.fw not in TYPES.firmware[TYPES.index[dt.name]]
    if threat in ("cloning", "unauthorized_access"):
        return net.src_ip is not None and not net.src_ip.startswith("10.")
    if threat == "hijack":
        return net.dst_ip not in BROKERS
    raise AssertionError(threat)


def test_labels_match_marked_messages_exactly(small_fleet: Recording) -> None:
    assert {lb.threat for lb in small_fleet.sim.labels} == set(ATTACK_CLASSES)
    for lb in small_fleet.sim.labels:
        msgs, dt = small_fleet.of(lb.device_id), small_fleet.dtype(lb.device_id)
        sent = [m.sent for m in msgs]
        assert lb.start in sent and lb.end in sent, lb
        if lb.threat == "false_data_injection":
            continue
        seen, marked, port = -1, [], msgs[0].ev.net.dst_port if msgs[0].ev.net else None
        for m in msgs:
            if is_marked(lb.threat, m, seen, dt, port):
                marked.append(m.sent)
            seen = max(seen, m.ev.seq)
        assert marked[0] == lb.start and marked[-1] == lb.end, lb


def attack_window(run: Recording, lb: AttackLabel) -> tuple[list[SentMessage], float]:
    """The attacked device's messages in the first 10 s of the label, and that span in seconds."""
    end = min(lb.start + 10_000, lb.end)
    return [m for m in run.of(lb.device_id) if lb.start <= m.sent <= end], (end - lb.start) / 1e3


def assert_sustained_fdi(dt: DeviceType, before: list[Telemetry], during: list[Telemetry]) -> None:
    """Every injected message breaks an invariant (types that have one) or leaves the normal band."""
    for ev in during:
        if dt.invariants:
            assert violations(dt, [ev]), f"{ev.device_id}@{ev.ts}: invariants hold"
            continue
        band = {s.name: [e.signals[s.name] for e in before[-10:]] for s in dt.signals}
        assert any(not min(v) - 1e-3 <= ev.signals[k] <= max(v) + 1e-3 for k, v in band.items())


def test_each_attack_shows_its_signature(small_fleet: Recording) -> None:
    for lb in small_fleet.sim.labels:
        dt, (win, span) = small_fleet.dtype(lb.device_id), attack_window(small_fleet, lb)
        before = [m for m in small_fleet.of(lb.device_id) if m.sent < lb.start]
        normal = span * dt.report_hz
        nets = [m.ev.net for m in win if m.ev.net is not None]
        # 10..20 s attacks; tampering labels span only the altered subset of reports
        assert span >= 7.9 or lb.threat in ("tampering", "unauthorized_access")
        if lb.threat == "dos":
            assert len(win) >= 8 * normal and all(n.connections >= 5 for n in nets)
        elif lb.threat == "scan":
            assert len({n.dst_port for n in nets}) >= 30
            usual = before[0].ev.net.dst_port if before[0].ev.net else None
            assert all(n.bytes_out <= 200 for n in nets if n.dst_port != usual)
        elif lb.threat == "brute_force":
            assert sum(m.ev.auth.failures for m in win if m.ev.auth) >= 10
            assert len(win) >= 2 * normal
        elif lb.threat == "exfiltration":
            base = np.median([m.ev.net.bytes_out for m in before if m.ev.net])
            assert min(n.bytes_out for n in nets) >= 4 * base
            assert np.mean([n.bytes_out for n in nets]) >= 10 * base
            assert all(n.dst_port in (443, 8443) and n.dst_ip not in BROKERS for n in nets)
        elif lb.threat == "false_data_injection":
            evs = [m.ev for m in small_fleet.of(lb.device_id) if m.sent <= lb.end]
            assert violations(dt, [m.ev for m in before]) == []
            assert violations(dt, evs[len(before) - 1:len(before) + 1]), "no step at the start"
            assert_sustained_fdi(dt, evs[:len(before)], evs[len(before):])
        elif lb.threat == "replay":
            old = {m.value for m in before}
            replays = [m for m in win if ts_of(m.ev) < lb.start - 1 and m.value in old]
            assert len(replays) >= 1.5 * span
            assert all(KEYS.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) == SIG_OK
                       for m in replays)
            assert len(win) - len(replays) >= normal - 2  # genuine traffic continues
        elif lb.threat == "tampering":
            during = [m for m in small_fleet.of(lb.device_id) if lb.start <= m.sent <= lb.end]
            states = [KEYS.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) for m in during]
            assert sum(s != SIG_OK for s in states) >= 0.5 * len(states)
            assert set(states) <= {SIG_OK, SIG_BAD, SIG_MISSING}
        elif lb.threat == "firmware_tampering":
            allowed = TYPES.firmware[TYPES.index[dt.name]]
            assert all(m.ev.fw not in allowed for m in win)
            assert lb.end == small_fleet.of(lb.device_id)[-1].sent
        elif lb.threat == "cloning":  # a second sender: other address, its own counter, signed
            clone = [m for m in win if not str(m.ev.net.src_ip if m.ev.net else "").startswith("10.")]
            assert len(clone) >= 0.4 * normal and len(win) - len(clone) >= normal - 2
            assert all(KEYS.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) == SIG_OK
                       for m in clone)
        elif lb.threat == "unauthorized_access":
            logins = [m.ev.auth for m in win if m.ev.auth and m.ev.auth.successes]
            assert logins and all(not a.failures for a in logins)
        elif lb.threat == "hijack":
            c2 = [n for n in nets if n.dst_ip not in BROKERS]
            base_out = np.median([m.ev.net.bytes_out for m in before if m.ev.net])
            assert len(c2) >= normal and len({(n.dst_ip, n.dst_port) for n in c2}) == 1
            assert np.median([n.bytes_out for n in c2]) >= 3 * base_out


def window_evidence(threat: str, win: list[SentMessage], before: list[SentMessage], dt: DeviceType) -> float:
    """How strongly one 10 s window shows `threat`, in the units of the detection thresholds."""
    nets = [m.ev.net for m in win if m.ev.net is not None]
    if threat == "dos":
        return len(win) / (10 * dt.report_hz)
    if threat == "scan":
        return len({n.dst_port for n in nets})
    if threat == "brute_force":
        return sum(m.ev.auth.failures for m in win if m.ev.auth)
    if threat == "exfiltration":
        base = float(np.median([m.ev.net.bytes_out for m in before if m.ev.net]))
        return sum(n.bytes_out for n in nets) / (base * 10 * dt.report_hz)
    if threat == "replay":
        seqs = {m.ev.seq for m in before}
        return sum(m.ev.seq in seqs for m in win)
    if threat == "tampering":
        return sum(KEYS.check(m.ev.device_id, canonical_bytes(m.ev), m.ev.sig) != SIG_OK
                   for m in win)
    if threat == "firmware_tampering":
        return sum(m.ev.fw not in TYPES.firmware[TYPES.index[dt.name]] for m in win)
    if threat in ("cloning", "unauthorized_access", "hijack"):  # marked messages
        return sum(is_marked(threat, m, -1, dt, None) for m in win)
    prev = [m.ev for m in before[-1:]]
    return len(violations(dt, prev + [m.ev for m in win]))


# pipelines/defaults.toml [detection] thresholds (dos: rate ratio, a hair under 5 for the rare
# weakest case: 8x flood, 10 s attack split 5 s / 5 s over two windows)
THRESHOLDS = {"dos": 4.5, "scan": 20, "brute_force": 8, "exfiltration": 8, "replay": 2,
              "tampering": 1, "firmware_tampering": 1, "false_data_injection": 1, "cloning": 2,
              "unauthorized_access": 1, "hijack": 2}


def test_each_attack_crosses_detection_thresholds_in_an_aligned_window(small_fleet: Recording) -> None:
    for lb in small_fleet.sim.labels:
        msgs, dt = small_fleet.of(lb.device_id), small_fleet.dtype(lb.device_id)
        best = 0.0
        for w in range(lb.start // 10_000 * 10_000, lb.end + 1, 10_000):
            win = [m for m in msgs if w <= m.sent < w + 10_000]
            before = [m for m in msgs if m.sent < w]
            best = max(best, window_evidence(lb.threat, win, before, dt))
        assert best >= THRESHOLDS[lb.threat], (lb, best)


def test_attacked_devices_keep_counting_seq(small_fleet: Recording) -> None:
    for lb in small_fleet.sim.labels:
        if lb.threat in ("dos", "scan", "brute_force"):
            seqs = np.array([m.ev.seq for m in small_fleet.of(lb.device_id)])
            assert np.all(np.diff(seqs) > 0)
            last = small_fleet.of(lb.device_id)[-1].ev
            assert small_fleet.sim.keyring.check(lb.device_id, canonical_bytes(last), last.sig) == SIG_OK


def test_short_run_still_places_every_attack() -> None:
    run = simulate(devices=16, duration_s=12.0, seed=9)
    assert {lb.threat for lb in run.sim.labels} == set(ATTACK_CLASSES)
    sent = {m.ev.device_id: {x.sent for x in run.of(m.ev.device_id)} for m in run.msgs}
    for lb in run.sim.labels:
        assert lb.start in sent[lb.device_id] and lb.end in sent[lb.device_id]


# -------------------------------------------------------------------------------------- rate, cfg


def test_rate_option_gives_requested_events_per_second() -> None:
    run = simulate(devices=50, duration_s=10.0, rate=2000.0, attack_fraction=0.0)
    assert len(run.msgs) == pytest.approx(20_000, rel=0.01)
    per_s = np.bincount((np.array([m.sent for m in run.msgs]) - START) // 1000)
    assert np.all(np.abs(per_s - 2000) <= 60)
    one = [ts_of(m.ev) for m in run.of(run.sim.devices[7][0])]
    assert np.median(np.diff(one)) == pytest.approx(25, abs=2)  # 50 devices / 2000 per s


def test_too_short_run_with_attacks_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        FleetSimulator(SimConfig(devices=16, duration_s=1.0, start_ms=START), TYPES, KEYS)
    quiet = FleetSimulator(SimConfig(devices=16, duration_s=1.0, attack_fraction=0.0), TYPES, KEYS)
    assert sum(len(b) for b in quiet.batches()) > 0


WEATHER = """
name = "weather_station"
report_hz = 4.0
firmware = ["1.2"]
[[signals]]
name = "wind_ms"
min = 0.0
max = 60.0
roc_min = -5.0
roc_max = 5.0
[[signals]]
name = "rain_total_mm"
min = 0.0
max = 10000.0
roc_min = 0.0
roc_max = 1.0
[[signals]]
name = "door_open"
unit = "bool"
min = 0.0
max = 1.0
roc_min = -1e9
roc_max = 1e9
[simulate]
bytes_out = 90
bytes_in = 30
dst_ports = [1883]
"""


def test_a_type_without_a_physics_model_gets_generic_physics() -> None:
    table = build_table([*TYPES.types, parse_device_type(WEATHER, "weather_station.toml")])
    sim = FleetSimulator(SimConfig(devices=30, duration_s=40.0, start_ms=START,
                                   attack_fraction=0.5), table, KEYS)
    dec = msgspec.json.Decoder(Telemetry)
    msgs = [dec.decode(v) for b in sim.batches() for v in b.values]
    attacked = {lb.device_id for lb in sim.labels}
    weather = table.types[table.index["weather_station"]]
    for did, tname in sim.devices:
        if tname == "weather_station" and did not in attacked:
            evs = [e for e in msgs if e.device_id == did]
            assert len(evs) == pytest.approx(160, abs=2) and violations(weather, evs) == []
    assert any(lb.device_id.startswith("weather_station") for lb in sim.labels)


@pytest.mark.parametrize(("kw", "match"), [
    ({"attacks": ("dos", "teleport")}, "teleport"),
    ({"devices": 0}, "devices"),
    ({"devices": 2, "rate": 5000.0}, "rate"),
    ({"attack_fraction": 1.5}, "attack_fraction"),
    ({"duration_s": 0.0}, "duration_s"),
])
def test_bad_config_is_rejected(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimConfig(**kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ labels


def test_labels_round_trip(tmp_path: Path, small_fleet: Recording) -> None:
    path = tmp_path / "labels.jsonl"
    write_labels(small_fleet.sim.labels, path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(small_fleet.sim.labels)
    assert set(json.loads(lines[0])) == {"device_id", "threat", "start", "end"}
    assert read_labels(path) == small_fleet.sim.labels


def test_labels_accept_rfc3339(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"device_id": "pump_plc-000001", "threat": "dos", "start": "2023-11-14T22:13:20Z",'
        ' "end": "2023-11-14T23:13:30.5+01:00"}\n\n'
        '{"device_id": "x", "threat": "scan", "start": 1700000000000, "end": 1700000000001}\n')
    a, b = read_labels(path)
    assert a == AttackLabel("pump_plc-000001", "dos", START, START + 10_500)
    assert b == AttackLabel("x", "scan", START, START + 1)
    assert a.covers(START + 10_500) and not a.covers(START + 10_501)


@pytest.mark.parametrize(("line", "match"), [
    ("not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    ('{"device_id": "d", "threat": "dos", "start": 1}', "missing key"),
    ('{"device_id": "d", "threat": "dos", "start": "2023-11-14T22:13:20", "end": 5}', "UTC offset"),
    ('{"device_id": "d", "threat": "dos", "start": "yesterday", "end": 5}', "RFC 3339"),
    ('{"device_id": "d", "threat": "dos", "start": true, "end": 5}', "epoch ms"),
    ('{"device_id": "d", "threat": "dos", "start": 9, "end": 5}', "before start"),
    ('{"device_id": "", "threat": "dos", "start": 1, "end": 5}', "device_id"),
])
def test_bad_label_lines_name_the_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"device_id": "d", "threat": "dos", "start": 1, "end": 2}\n\n' + line + "\n")
    with pytest.raises(LabelError, match=match) as info:
        read_labels(path)
    assert f"{path}:3:" in str(info.value)
