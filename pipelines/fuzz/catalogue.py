"""The hostile inputs of issue 18, one `Kind` each, built around a small valid fleet.

Every kind invents its own device ids (fz-<kind>-...), so the twins topic says how many of its
messages were processed; its messages' offsets say which dead letters are its own.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import msgspec

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.fuzz.checks import (
    future_senders_flagged,
    identity_kept,
    intel_reader_alive,
    no_slash0_contacts,
    risk_table_printable,
)
from twinguard.pipelines.fuzz.model import Kind, Message
from twinguard.pipelines.fuzz.mutate import mutations
from twinguard.pipelines.sim.activity import ActivitySimulator
from twinguard.pipelines.sim.fleet import FleetSimulator, SimConfig
from twinguard.schemas.device_types import DeviceTypeTable
from twinguard.schemas.messages import Activity, Auth, Intel, Net, Telemetry, canonical_bytes

HOUR_MS = 3_600_000
FLOOD = 6_000  # the brake-pulling flood on one key
FUTURE_DEVICES = 40
DEEP = 1_000
THERMO = {"temperature_c": 21.0, "setpoint_c": 21.0, "humidity_pct": 40.0, "heating": 0.0}
ESCAPES = "\x1b[2J\x1b]0;owned\x07\u202e\r| fake | row |\n"
INTEL_ADDRESS = "100.64.77.77"  # outside the simulator's ranges: only the intel kind talks to it
SLASH0_NOTE = "fuzz: everything is bad"


@dataclass(frozen=True)
class Context:
    """What the builders share: keys to sign with, the device types, the clock, the seed."""

    keys: KeyRing
    types: DeviceTypeTable
    now_ms: int
    rng: random.Random

    def sign(self, ev: Telemetry) -> bytes:
        """`ev` signed by its device's key, keys sorted (as devices send it)."""
        sig = self.keys.sign(ev.device_id, canonical_bytes(ev))
        return msgspec.json.encode(msgspec.structs.replace(ev, sig=sig), order="sorted")

    def thermostat(self, device: str, seq: int, ts: int | None = None, **over: object) -> Telemetry:
        ev = Telemetry(device_id=device, type="thermostat", ts=self.now_ms if ts is None else ts,
                       seq=seq, signals=dict(THERMO), fw=self.types.types[self._t()].firmware[0])
        return msgspec.structs.replace(ev, **over) if over else ev

    def _t(self) -> int:
        return self.types.index["thermostat"]


def telemetry(key: str, value: bytes | None) -> Message:
    return Message("telemetry", key.encode(), value)


def build(ctx: Context, size: int, seed: int) -> list[Kind]:
    """Every kind, in the order they are produced (the valid baseline first)."""
    base, fleet_values = baseline(ctx, seed)
    return [base, huge_numbers(ctx), deep_nesting(ctx), oversized(ctx), intel(ctx),
            brake_flood(ctx), identity(ctx), terminal(ctx), random_ids(ctx, size),
            random_mutations(ctx, fleet_values, size, seed), future_timestamps(ctx)]


def baseline(ctx: Context, seed: int) -> tuple[Kind, list[Message]]:
    """A small simulated fleet (with attacks and operators), history ending now, renamed fz-base-*."""
    k = Kind("base", "", "valid simulated fleet with attacks and operator activity")
    fleet = FleetSimulator(SimConfig(devices=40, duration_s=30, seed=seed,
                                     start_ms=ctx.now_ms - 40_000), ctx.types, ctx.keys)
    for role, keys, values, _ts in ActivitySimulator(fleet).interleave(fleet.batches()):
        for key, value in zip(keys, values, strict=True):
            dev = k.device(key.decode())
            k.messages.append(Message(role, dev.encode(), rename(ctx, role, value, dev)))
    return k, list(k.messages)


def rename(ctx: Context, role: str, value: bytes, device: str) -> bytes:
    """A simulator message moved to another device id (telemetry re-signed if it was signed)."""
    if role == "activity":
        a = msgspec.json.decode(value, type=Activity)
        return msgspec.json.encode(msgspec.structs.replace(a, device_id=device))
    ev = msgspec.json.decode(value, type=Telemetry)
    ev = msgspec.structs.replace(ev, device_id=device)
    return ctx.sign(msgspec.structs.replace(ev, sig=None)) if ev.sig else msgspec.json.encode(ev)


def huge_numbers(ctx: Context) -> Kind:
    """Item 1: signed, schema-valid numbers far beyond any physical range (XGBoost saw inf)."""
    k = Kind("huge_numbers", "1", "signed signals of 1e40..1.8e308 and counters at 2**53")
    values = (1e40, 1e50, -1e45, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324)
    for d in range(10):
        dev = k.device(str(d))
        for seq in range(1, 13):
            signals = dict(THERMO, temperature_c=values[(d + seq) % len(values)],
                           humidity_pct=values[(d * seq) % len(values)])
            net = Net(bytes_out=2**53, bytes_in=2**53, connections=2**53, packets_out=2**53)
            ev = ctx.thermostat(dev, seq, ctx.now_ms - 30_000 + seq * 1000, signals=signals,
                                net=net, auth=Auth(failures=2**53, successes=2**53))
            k.messages.append(telemetry(dev, ctx.sign(ev)))
    return k


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_nesting(ctx: Context) -> Kind:
    """Item 2: 1,000 levels of nesting in ~2.5 KB (unknown member, inside net, on activity)."""
    k = Kind("deep_nesting", "2", "arrays nested 1,000+ deep: unknown member, net, signal, activity")
    for d, depth in enumerate((DEEP, DEEP, 5 * DEEP, 50 * DEEP)):
        dev = k.device(str(d))
        base = json.loads(ctx.sign(ctx.thermostat(dev, 1)))
        deep = _deep(depth)
        for spot in ("top", "net", "signal"):
            text = json.dumps(base)[:-1]
            if spot == "top":
                text += f', "x": {deep}}}'
            elif spot == "net":
                text = text.replace('"seq"', f'"net": {{"extra": {deep}}}, "seq"', 1) + "}"
            else:
                text = text.replace('"heating":', f'"deep": {deep}, "heating":', 1) + "}"
            k.messages.append(telemetry(dev, text.encode()))
        act = {"device_id": dev, "ts": ctx.now_ms, "user": "op", "action": "set",
               "params": {"setpoint_c": 20.0}}
        text = json.dumps(act)[:-1] + f', "extra": {deep}}}'
        k.messages.append(Message("activity", dev.encode(), text.encode()))
    return k


def oversized(ctx: Context) -> Kind:
    """Item 3: messages of ~750 KB to 1 MB (their base64 dead letters exceed the broker's limit)
    and one of 10 MB that lz4 squeezes under it."""
    k = Kind("oversized", "3", "750 KB - 1 MB messages, one 10 MB lz4-compressible message")
    rnd = random.Random(ctx.rng.random())
    for d, size in enumerate((750_000, 900_000, 1_000_000)):
        dev = k.device(str(d))
        pad = rnd.randbytes(size // 2).hex()
        body = json.loads(ctx.sign(ctx.thermostat(dev, 1)))
        body["pad"] = pad
        k.messages.append(telemetry(dev, json.dumps(body).encode()))
    dev = k.device("10mb")
    body = json.loads(ctx.sign(ctx.thermostat(dev, 1)))
    body["pad"] = "A" * 10_000_000
    k.messages.append(telemetry(dev, json.dumps(body).encode()))
    act = {"device_id": dev, "ts": ctx.now_ms, "user": "op", "action": "view",
           "params": {"note": "B" * 900_000}}
    k.messages.append(Message("activity", dev.encode(), json.dumps(act).encode()))
    return k


def intel(ctx: Context) -> Kind:
    """Item 4: a 2 MB note on an address devices talk to, a record nested 1,000 deep, and an
    over-broad `0.0.0.0/0` entry (it put every device at risk >= 50)."""
    k = Kind("intel", "4", "intel: 2 MB note on a contacted address, 1,000-deep record, 0.0.0.0/0",
             checks=[intel_reader_alive, no_slash0_contacts])
    big = Intel(indicator=INTEL_ADDRESS, kind="ip", severity="high", note="N" * 2_000_000)
    k.messages.append(Message("intel", INTEL_ADDRESS.encode(), msgspec.json.encode(big)))
    deep = json.dumps({"indicator": "100.64.0.1", "kind": "ip"})[:-1] + f', "x": {_deep(DEEP)}}}'
    k.messages.append(Message("intel", b"100.64.0.1", deep.encode()))
    slash0 = Intel(indicator="0.0.0.0/0", kind="cidr", severity="critical", note=SLASH0_NOTE)
    k.messages.append(Message("intel", b"0.0.0.0/0", msgspec.json.encode(slash0)))
    for d in range(10):  # 5 contact the address with the 2 MB note, 5 bystanders contact none
        dev = k.device(f"{'contact' if d < 5 else 'bystander'}-{d}")
        dst = INTEL_ADDRESS if d < 5 else "10.0.0.10"
        for seq in range(1, 6):
            ev = ctx.thermostat(dev, seq, ctx.now_ms - 20_000 + seq * 1000,
                                net=Net(dst_ip=dst, dst_port=443, bytes_out=500))
            k.messages.append(telemetry(dev, ctx.sign(ev)))
    return k


def brake_flood(ctx: Context) -> Kind:
    """Item 5: 6,000 garbage messages keyed to one device (they stopped the whole flow), with that
    device's valid messages in between (they must still be processed)."""
    k = Kind("brake_flood", "5", f"{FLOOD} garbage messages keyed to one device, its valid ones between")
    dev = k.device("victim")
    garbage = (b"{garbage", b"\x00\x01\x02", b"[]", b"null", b'{"device_id": 1}')
    for i in range(FLOOD):
        k.messages.append(telemetry(dev, garbage[i % len(garbage)]))
        if i % 300 == 0:
            seq = i // 300 + 1
            k.messages.append(telemetry(dev, ctx.sign(ctx.thermostat(
                dev, seq, ctx.now_ms - 30_000 + seq * 1000))))
    return k


def identity(ctx: Context) -> Kind:
    """Item 7: unsigned messages rewriting a signed device's firmware and address and raising its
    auth risk; a signed message claiming another device type."""
    k = Kind("identity", "7", "unsigned fw/src_ip/auth changes to signed devices, type switch",
             checks=[identity_kept])
    for d in range(5):
        dev = k.device(str(d))
        for seq in range(1, 11):
            ev = ctx.thermostat(dev, seq, ctx.now_ms - 40_000 + seq * 1000,
                                net=Net(src_ip=f"10.1.0.{d + 1}", dst_ip="10.0.0.10", dst_port=8883))
            k.messages.append(telemetry(dev, ctx.sign(ev)))
        for seq in range(11, 16):
            ev = ctx.thermostat(dev, seq, ctx.now_ms - 25_000 + seq * 1000, fw="9.9.9-evil",
                                net=Net(src_ip="203.0.113.66", dst_ip="10.0.0.10", dst_port=8883),
                                auth=Auth(failures=50, successes=1, principal="root"))
            k.messages.append(telemetry(dev, msgspec.json.encode(ev)))  # unsigned
        camera = Telemetry(device_id=dev, type="ip_camera", ts=ctx.now_ms - 5_000, seq=20,
                           signals={})
        k.messages.append(telemetry(dev, ctx.sign(camera)))
    return k


def terminal(ctx: Context) -> Kind:
    """Item 8: terminal control sequences in every device-controlled string a human reads."""
    k = Kind("terminal", "8", "ESC/OSC/bidi/CR/newline in fw, src_ip, principal, user, intel note",
             checks=[risk_table_printable])
    for d in range(5):
        dev = k.device(str(d))
        for seq in range(1, 4):
            ev = ctx.thermostat(dev, seq, ctx.now_ms - 20_000 + seq * 1000, fw=ESCAPES[:60],
                                net=Net(src_ip=ESCAPES, dst_ip=ESCAPES),
                                auth=Auth(failures=20, principal=ESCAPES))
            k.messages.append(telemetry(dev, ctx.sign(ev)))
        act = Activity(device_id=dev, ts=ctx.now_ms - 10_000, user=ESCAPES, action="set",
                       params={"setpoint_c": 80.0}, src_ip=ESCAPES)
        k.messages.append(Message("activity", dev.encode(), msgspec.json.encode(act)))
    note = Intel(indicator="100.64.9.9", kind="ip", severity="critical", note=ESCAPES)
    k.messages.append(Message("intel", b"100.64.9.9", msgspec.json.encode(note)))
    return k


def random_ids(ctx: Context, size: int) -> Kind:
    """Item 9: unsigned messages from `size` random device ids, 60 KB source addresses, and
    commands for devices that never report."""
    k = Kind("random_ids", "9", f"{size} unsigned random device ids, 60 KB src_ip, orphan commands")
    rnd = random.Random(ctx.rng.random())
    for i in range(size):
        dev = k.device(f"{rnd.getrandbits(64):016x}")
        ev = ctx.thermostat(dev, 1, ctx.now_ms - 30_000 + i % 20_000)
        k.messages.append(telemetry(dev, msgspec.json.encode(ev)))
    for i in range(20):
        dev = k.device(f"wide-{i}")
        ev = ctx.thermostat(dev, 1, net=Net(src_ip="9" * 60_000))
        k.messages.append(telemetry(dev, msgspec.json.encode(ev)))
    for i in range(max(10, size // 100)):
        dev = k.device(f"orphan-{i}")
        act = Activity(device_id=dev, ts=ctx.now_ms - 10_000, user="op", action="set",
                       params={"setpoint_c": 20.0})
        k.messages.append(Message("activity", dev.encode(), msgspec.json.encode(act)))
    return k


def random_mutations(ctx: Context, fleet: list[Message], size: int, seed: int) -> Kind:
    """Random byte and structure mutations of the valid fleet's messages (renamed fz-mutation-*)."""
    k = Kind("mutation", "1-9", f"{size} random mutations of valid telemetry and activity")
    rnd = random.Random(seed * 7919 + 1)
    tel = [m for m in fleet if m.role == "telemetry" and m.value]
    act = [m for m in fleet if m.role == "activity" and m.value]
    for _ in range(size):
        src = rnd.choice(tel if rnd.random() < 0.8 or not act else act)
        assert src.key is not None and src.value is not None  # noqa: S101 - fleet messages are keyed
        dev = k.device(f"{src.key.decode()[3:]}")
        k.messages.append(Message(src.role, dev.encode(),
                                  mutations(rename(ctx, src.role, src.value, dev), rnd, ctx.now_ms)))
    return k


def future_timestamps(ctx: Context) -> Kind:
    """Item 6: signed messages 23 h ahead (within max_future_skew_ms) from 40 device ids; they
    used to advance their partition's event-time mark and close everyone's windows."""
    k = Kind("future_ts", "6", f"signed messages at now + 23 h from {FUTURE_DEVICES} devices",
             checks=[future_senders_flagged])
    for d in range(FUTURE_DEVICES):
        dev = k.device(str(d))
        for seq in range(1, 4):
            ev = ctx.thermostat(dev, seq, ctx.now_ms + 23 * HOUR_MS + seq * 1000)
            k.messages.append(telemetry(dev, ctx.sign(ev)))
    return k
