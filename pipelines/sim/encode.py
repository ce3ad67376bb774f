"""Message encoding, the per-message hot loop: builds each simulated message's `Telemetry`, signs
it with its device's key (or tampers with it as planned) and encodes it as canonical JSON."""

from __future__ import annotations

import binascii
import contextlib
import gc
import hashlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.sim.attacks import AttackPlan
from twinguard.pipelines.sim.devices import FleetDevices
from twinguard.pipelines.sim.events import GENUINE, KIND_IDENT, KIND_REPLAY, NO_SIG, Events
from twinguard.pipelines.sim.fdi import tamper_signal
from twinguard.pipelines.sim.identity import Lookalikes, switched
from twinguard.schemas.device_types import MAX_SIGNALS, DeviceType, DeviceTypeTable
from twinguard.schemas.messages import Auth, Net, Telemetry

I64 = npt.NDArray[np.int64]


class Encoder:
    """One pass's encoder: sequence counters, replay captures and per-device signing state."""

    def __init__(self, devices: FleetDevices, types: DeviceTypeTable, plan: AttackPlan,
                 lookalikes: Lookalikes, keyring: KeyRing, sign: bool, start_ms: int) -> None:
        self.devices, self.plan, self.lookalikes = devices, plan, lookalikes
        self.keyring, self.sign, self.start_ms = keyring, sign, start_ms
        n = len(devices.ids)
        self.seqs = [0] * n
        self.clone_seqs: dict[int, int] = {}
        self.captured: dict[int, bytes] = {}
        self.enc_sorted = msgspec.json.Encoder(order="sorted")
        tsigs = [_SignalsCodec(dt, t) for t, dt in enumerate(types.types)]
        self.codec = [tsigs[t] for t in devices.type_of.tolist()]
        self.perm = np.array([c.perm for c in self.codec], np.int64).reshape(n, MAX_SIGNALS)
        # hmac.digest() re-derives the key pads on every call; copying prepared states is ~2.5x faster
        pads = [_hmac_pads(keyring.key(devices.ids[d])) for d in range(n)]
        self.ipads, self.opads = [p[0] for p in pads], [p[1] for p in pads]
        self.kbytes = [devices.ids[d].encode() for d in range(n)]
        self.cur = Events.empty(0)

    def encode(self, ev: Events) -> tuple[list[bytes], list[bytes], I64]:
        """Build, sign and encode each message; returns keys, values and send times.

        A value is `msgspec.json.encode(event, order="sorted")` of the signed event: the canonical
        (sorted, sig-less) bytes are encoded once, signed, and the sig is spliced in at its sorted
        place (between "seq" and "signals"), which saves a second encode per message.
        """
        devs, start_ms = self.devices, self.start_ms
        keys: list[bytes] = []
        values: list[bytes] = []
        kadd, vadd = keys.append, values.append
        seqs, enc, sign = self.seqs, self.enc_sorted.encode, self.sign
        hexlify = binascii.hexlify
        make = [c.make for c in self.codec]
        ids, types, src, dst, fw = devs.ids, devs.type_names, devs.src, devs.dst, devs.fw
        ipads, opads, kbytes = self.ipads, self.opads, self.kbytes
        special = ((ev.kind == KIND_REPLAY) | ev.drop | (ev.tag >= 0) | ev.alt | (ev.mode != 0)
                   | ev.fwmod | switched(self.lookalikes, ev.dev, ev.ts)).tolist()
        rows = np.take_along_axis(ev.sig, self.perm[ev.dev], axis=1).tolist()  # sorted-name order
        self.cur = ev
        for i, ts, d, row, bi, bo, pi, po, cn, pt, fl, sc, sp in zip(
                itertools.count(), (ev.ts + start_ms).tolist(), ev.dev.tolist(), rows,
                ev.bin.tolist(), ev.bout.tolist(), ev.pin.tolist(), ev.pout.tolist(),
                ev.conn.tolist(), ev.port.tolist(), ev.fail.tolist(), ev.succ.tolist(), special):
            if sp:
                value = self._special(i, ts, d, row)
                if value is not None:
                    kadd(kbytes[d])
                    vadd(value)
                continue
            seq = seqs[d]
            seqs[d] = seq + 1
            msg = Telemetry(ids[d], types[d], ts, seq, make[d](*row),
                            Net(src[d], dst[d], pt, bi, bo, pi, po, cn),
                            Auth(fl, sc) if fl or sc else _AUTH_NONE, fw[d])
            value = enc(msg)  # == canonical_bytes(msg): sig is None here
            if sign:
                inner = ipads[d].copy()
                inner.update(value)
                outer = opads[d].copy()
                outer.update(inner.digest())
                # the first '"signals":' is the key: inside a JSON string its quotes are escaped
                value = value.replace(b'"signals":', b'"sig":"' + hexlify(outer.digest())
                                      + b'","signals":', 1)
            kadd(kbytes[d])
            vadd(value)
        stamps: I64 = ev.ts[~ev.drop] + start_ms
        return keys, values, stamps

    def _special(self, i: int, ts: int, d: int, row: list[float]) -> bytes | None:
        """Encode event i of the current slice when it is a replay, drop, capture or attack-altered."""
        devs, ev, codec, la = self.devices, self.cur, self.codec[d], self.lookalikes
        if ev.kind[i] == KIND_REPLAY:
            return self.captured[int(ev.tag[i])]
        if ev.kind[i] == KIND_IDENT:
            return self._identity(i, ts, d, row)
        seq = self.seqs[d]
        self.seqs[d] = seq + 1
        if ev.drop[i]:
            return None
        signals = codec.make(*row)
        fail, succ = int(ev.fail[i]), int(ev.succ[i])
        rel = ts - self.start_ms
        dst = self.plan.exfil_dst.get(d, devs.dst[d]) if ev.alt[i] else devs.dst[d]
        net = _net(ev, i, la.src_at(d, rel, devs.src[d]), dst)
        msg = Telemetry(devs.ids[d], devs.type_names[d], ts, seq, signals, net, Auth(fail, succ),
                        self.plan.fw_mod.get(d, devs.fw[d]) if ev.fwmod[i]
                        else la.fw_at(d, rel, devs.fw[d]))
        mode = int(ev.mode[i])
        if self.sign and mode != NO_SIG:
            inner = self.ipads[d].copy()
            inner.update(self.enc_sorted.encode(msg))
            outer = self.opads[d].copy()
            outer.update(inner.digest())
            msg.sig = outer.hexdigest()
        if mode != GENUINE:
            setattr(signals, codec.tamper_attr, float(ev.tval[i]))  # changed after signing
        value = self.enc_sorted.encode(msg)
        if ev.tag[i] >= 0:
            self.captured[int(ev.tag[i])] = value
        return value

    def _identity(self, i: int, ts: int, d: int, row: list[float]) -> bytes:
        """Encode identity-attack message i of the current slice (signed with the device's key)."""
        devs, ev = self.devices, self.cur
        p = int(ev.tag[i])
        plan = self.plan.ident_plans[p]
        if plan.seq0 >= 0:  # a clone counts its own messages
            seq = self.clone_seqs.get(p, plan.seq0)
            self.clone_seqs[p] = seq + 1
        else:
            seq = self.seqs[d]
            self.seqs[d] = seq + 1
        signals = self.codec[d].make(*row)
        net = _net(ev, i, plan.src, plan.dst)
        auth = Auth(0, int(ev.succ[i]), plan.principal) if ev.succ[i] else Auth()
        msg = Telemetry(devs.ids[d], devs.type_names[d], ts, seq, signals, net, auth, devs.fw[d])
        if self.sign:
            msg.sig = self.keyring.sign(devs.ids[d], self.enc_sorted.encode(msg))
        value: bytes = self.enc_sorted.encode(msg)
        return value


def _net(ev: Events, i: int, src: str, dst: str) -> Net:
    """The network block of event row i, sent from src to dst."""
    return Net(src, dst, int(ev.port[i]), int(ev.bin[i]), int(ev.bout[i]), int(ev.pin[i]),
               int(ev.pout[i]), int(ev.conn[i]))


class _SignalsCodec:
    """Per-type msgspec Struct standing in for the signals dict: same JSON, ~1 us less per message.

    Fields are s0..sK-1 renamed to the signal names in sorted order, so the encoding equals the
    sorted-key dict that `canonical_bytes` produces; `perm` reorders a value row to match.
    """

    def __init__(self, dt: DeviceType, t: int) -> None:
        names = [s.name for s in dt.signals]
        order = sorted(range(len(names)), key=lambda j: names[j])
        self.perm = order + list(range(len(names), MAX_SIGNALS))
        attrs = [f"s{p}" for p in range(len(names))]
        self.cls = msgspec.defstruct(f"Signals{t}", [(a, float) for a in attrs],
                                     rename={a: names[order[p]] for p, a in enumerate(attrs)},
                                     gc=False)  # floats only: no cycles possible
        self.tamper_attr = attrs[order.index(tamper_signal(dt))]
        k = len(names)
        if k == MAX_SIGNALS:
            self.make: Callable[..., Any] = self.cls
        else:
            self.make = lambda *row: self.cls(*row[:k])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Defer cyclic GC over one slice's encode loop (restored before control leaves the module).

    The loop allocates ~4 GC-tracked structs per message and creates no reference cycles, yet
    those allocations trigger collections that cost ~10 % of the run.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_AUTH_NONE = Auth()  # shared: most messages carry no auth events and nobody mutates it


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC inner/outer key blocks (RFC 2104), to copy per message."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
