"""Simulator scenarios for identity and behaviour-profile threats, and their benign look-alikes.

Attacks (extra messages, signed with the device's real key, labelled by their send times):
- cloning: a second sender with a copied identity (id + key) talks from its own address with its
  own sequence counter, at 0.5-1.5x the device's rate, reporting plausible (interpolated) readings;
- unauthorized_access: 1-3 successful logins from an outside address (half by a new principal);
- hijack: the device itself opens a persistent channel to a new destination (command and control):
  extra messages at 1-2x its rate with bytes out 3.5-6x and bytes in 4-20x its usual, to the end.
Benign look-alikes on unattacked devices (never labelled, so any alarm on them is a false alarm):
- one source-address change (a DHCP renewal), a firmware update to another allowlisted version
  with a download burst, and a 5-15 s traffic burst (bytes 1.5-3x both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from twinguard.schemas.messages import Auth, Net, Telemetry

if TYPE_CHECKING:
    from twinguard.pipelines.sim.fleet import FleetSimulator, _Attack, _Events

I64 = npt.NDArray[np.int64]
IDENT_THREATS = ("cloning", "unauthorized_access", "hijack")
IDENT_START_MS = 45_000  # these threats are judged against a learned profile (~4 windows)
C2_PORTS = (4444, 6667, 8080, 1883, 5222)
PRINCIPALS = ("admin", "root", "support", "guest", "maint")
LOOKALIKE_FRACTION = 0.03  # of unattacked devices, per kind of look-alike


@dataclass(frozen=True)
class IdentityPlan:
    """Addresses and principal an identity attack uses (strings the hot loop needs)."""

    src: str
    dst: str
    principal: str | None
    seq0: int  # the clone's own sequence counter start (-1 = the device's counter)


@dataclass
class Lookalikes:
    """Benign changes on unattacked devices: ms since start -> what changes."""

    ip_change: dict[int, tuple[int, str]] = field(default_factory=dict)  # dev -> (at, new address)
    fw_update: dict[int, tuple[int, str]] = field(default_factory=dict)  # dev -> (at, new firmware)
    bursts: dict[int, tuple[int, int, float, float]] = field(default_factory=dict)  # dev -> (a, b, out, in)
    switch_at: I64 | None = None  # per device: first ms of a changed address/firmware (else huge)


def _outside(rng: np.random.Generator) -> str:
    from twinguard.pipelines.sim.fleet import EXTERNAL_NETS

    return f"{EXTERNAL_NETS[int(rng.integers(len(EXTERNAL_NETS)))]}.{int(rng.integers(2, 255))}"


def plan_attack(sim: FleetSimulator, at: _Attack, rng: np.random.Generator, hz: float,
                avoid: I64) -> I64:
    """Extra-message schedule and addresses of one identity attack; returns its labelled times."""
    d = at.dev
    if at.threat == "unauthorized_access":
        gaps = rng.uniform(1000, 3000, int(rng.integers(1, 4)))
        ts = at.a0 + np.concatenate([[0.0], np.cumsum(gaps[:-1])]).astype(np.int64)
        at.extra_ts = np.setdiff1d(ts[ts <= at.a1], avoid)
        # half use a principal of their own, half only show up as a new source address
        who = PRINCIPALS[int(rng.integers(len(PRINCIPALS)))] if rng.random() < 0.5 else None
        plan = IdentityPlan(_outside(rng), sim._dst[d], who, -1)
    else:
        rate = rng.uniform(0.5, 1.5) * hz if at.threat == "cloning" else rng.uniform(1.0, 2.0) * hz
        at.extra_ts = sim._times(rng, at.a0, at.a1, rate, avoid)
        if at.threat == "cloning":  # a clone elsewhere in the network, often behind other NAT
            plan = IdentityPlan(_outside(rng), sim._dst[d], None, int(rng.integers(0, 5000)))
        else:
            at.params = {"port": float(C2_PORTS[int(rng.integers(len(C2_PORTS)))]),
                         "out": rng.uniform(3.5, 6.0), "in": rng.uniform(4.0, 20.0)}
            plan = IdentityPlan(sim._src[d], _outside(rng), None, -1)
    at.params["plan"] = float(len(sim._ident_plans))
    sim._ident_plans.append(plan)
    return at.extra_ts


def fill_extra(ev: _Events, at: _Attack, base_out: float, base_in: float, own_port: int,
               rng: np.random.Generator) -> None:
    """Columns of an identity attack's extra messages (the plan index rides in `tag`)."""
    from twinguard.pipelines.sim.fleet import KIND_IDENT

    n = len(ev.ts)
    ev.kind[:] = KIND_IDENT
    ev.tag[:] = int(at.params["plan"])
    noise_out, noise_in = np.exp(0.12 * rng.standard_normal(n)), np.exp(0.15 * rng.standard_normal(n))
    if at.threat == "hijack":
        ev.port[:] = int(at.params["port"])
        noise_out, noise_in = noise_out * at.params["out"], noise_in * at.params["in"]
    else:
        ev.port[:] = own_port
    ev.bout = np.maximum(np.rint(base_out * noise_out), 1).astype(np.int64)
    ev.bin = np.maximum(np.rint(base_in * noise_in), 1).astype(np.int64)
    ev.pout, ev.pin = 1 + ev.bout // 1200, 1 + ev.bin // 1200
    ev.conn[:] = 1
    if at.threat == "unauthorized_access":
        ev.succ[:] = 1


def message(run: Any, i: int, ts: int, d: int, row: list[float]) -> bytes:
    """Encode identity-attack message i of the current slice (signed with the device's key)."""
    sim, ev = run.sim, run.cur
    p = int(ev.tag[i])
    plan: IdentityPlan = sim._ident_plans[p]
    if plan.seq0 >= 0:
        seq = run.clone_seqs.get(p, plan.seq0)
        run.clone_seqs[p] = seq + 1
    else:
        seq = run.seqs[d]
        run.seqs[d] = seq + 1
    signals = run.codec[d].make(*row)
    net = Net(plan.src, plan.dst, int(ev.port[i]), int(ev.bin[i]), int(ev.bout[i]),
              int(ev.pin[i]), int(ev.pout[i]), int(ev.conn[i]))
    auth = Auth(0, int(ev.succ[i]), plan.principal) if ev.succ[i] else Auth()
    msg = Telemetry(sim._ids[d], sim._types[d], ts, seq, signals, net, auth, sim._fw[d])
    if sim.cfg.sign:
        msg.sig = sim.keyring.sign(sim._ids[d], run.enc_sorted.encode(msg))
    value: bytes = run.enc_sorted.encode(msg)
    return value


def plan_lookalikes(sim: FleetSimulator, attacked: set[int], seed: int) -> Lookalikes:
    """Pick unattacked devices for each benign look-alike (own rng: attack plans are unchanged)."""
    rng = np.random.default_rng([seed, 5])
    out = Lookalikes()
    free = np.array(sorted(set(range(sim.cfg.devices)) - attacked), dtype=np.int64)
    k = int(round(LOOKALIKE_FRACTION * len(free)))
    if not k or sim.dur_ms < 30_000:
        return out
    lo, hi = min(20_000, sim.dur_ms - 10_000), sim.dur_ms - 5_000
    for kind in ("ip", "fw", "burst"):
        for d in rng.choice(free, size=k, replace=False).tolist():
            at = int(rng.integers(lo, hi))
            if kind == "ip":
                a, b = sim._src[d].rsplit(".", 1)
                out.ip_change[d] = (at, f"{a}.{(int(b) + 100) % 250 + 2}")
            elif kind == "fw":
                allowed = [f for f in sim.types.types[int(sim.type_of[d])].firmware if f != sim._fw[d]]
                if allowed:
                    out.fw_update[d] = (at, allowed[int(rng.integers(len(allowed)))])
            else:
                out.bursts[d] = (at, at + int(rng.integers(5_000, 15_001)), rng.uniform(1.5, 3.0),
                                 rng.uniform(1.5, 3.0))
    out.switch_at = np.full(sim.cfg.devices, np.iinfo(np.int64).max, dtype=np.int64)
    for d, (at, _v) in (*out.ip_change.items(), *out.fw_update.items()):
        out.switch_at[d] = min(out.switch_at[d], at)
    return out


def switched(la: Lookalikes, dev: I64, ts: I64) -> npt.NDArray[np.bool_]:
    """Rows (device, ms since start) sent after their device's address change or update."""
    if la.switch_at is None:
        return np.zeros(len(dev), dtype=bool)
    out: npt.NDArray[np.bool_] = ts >= la.switch_at[dev]
    return out


def src_of(sim: FleetSimulator, d: int, rel_ms: int) -> str | None:
    change = sim._lookalikes.ip_change.get(d)
    return change[1] if change is not None and rel_ms >= change[0] else sim._src[d]


def fw_of(sim: FleetSimulator, d: int, rel_ms: int) -> str:
    update = sim._lookalikes.fw_update.get(d)
    return update[1] if update is not None and rel_ms >= update[0] else sim._fw[d]


def apply_bursts(sim: FleetSimulator, dev: I64, ts: I64, bout: I64, bin_: I64) -> None:
    """Benign traffic bursts and update downloads on the [steps, devices] byte grids, in place."""
    la: Lookalikes = sim._lookalikes
    if not la.bursts and not la.fw_update:
        return
    col = {int(d): j for j, d in enumerate(dev.tolist())}
    for d, (a, b, f_out, f_in) in la.bursts.items():
        j = col.get(d)
        if j is not None:
            hit = (ts[:, j] >= a) & (ts[:, j] <= b)
            bout[hit, j] = np.rint(bout[hit, j] * f_out)
            bin_[hit, j] = np.rint(bin_[hit, j] * f_in)
    for d, (a, _fw) in la.fw_update.items():
        j = col.get(d)
        if j is not None:  # the image arrives over the usual broker just before the switch
            hit = (ts[:, j] >= a - 5_000) & (ts[:, j] < a)
            bin_[hit, j] = bin_[hit, j] * 20
