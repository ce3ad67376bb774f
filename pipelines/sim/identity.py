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

import numpy as np
import numpy.typing as npt

from twinguard.pipelines.sim.clock import send_times
from twinguard.pipelines.sim.devices import FleetDevices, outside_address
from twinguard.pipelines.sim.events import KIND_IDENT, Events
from twinguard.schemas.device_types import DeviceTypeTable

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

    def src_at(self, d: int, rel_ms: int, usual: str) -> str:
        """Device d's source address at rel_ms (ms since start), given its usual one."""
        change = self.ip_change.get(d)
        return change[1] if change is not None and rel_ms >= change[0] else usual

    def fw_at(self, d: int, rel_ms: int, usual: str) -> str:
        """Device d's firmware at rel_ms (ms since start), given its usual one."""
        update = self.fw_update.get(d)
        return update[1] if update is not None and rel_ms >= update[0] else usual


def plan_attack(threat: str, window: tuple[int, int], home: tuple[str, str], hz: float,
                avoid: I64, rng: np.random.Generator, plans: list[IdentityPlan]
                ) -> tuple[I64, dict[str, float]]:
    """Send times and params of one identity attack on a device at `home` (src, dst) reporting at `hz`.

    Its addresses are appended to `plans`; the index rides in params["plan"].
    """
    (a0, a1), (src, dst) = window, home
    params: dict[str, float] = {}
    if threat == "unauthorized_access":
        gaps = rng.uniform(1000, 3000, int(rng.integers(1, 4)))
        ts = a0 + np.concatenate([[0.0], np.cumsum(gaps[:-1])]).astype(np.int64)
        extra_ts = np.setdiff1d(ts[ts <= a1], avoid)
        # half use a principal of their own, half only show up as a new source address
        who = PRINCIPALS[int(rng.integers(len(PRINCIPALS)))] if rng.random() < 0.5 else None
        plan = IdentityPlan(outside_address(rng), dst, who, -1)
    else:
        rate = rng.uniform(0.5, 1.5) * hz if threat == "cloning" else rng.uniform(1.0, 2.0) * hz
        extra_ts = send_times(rng, a0, a1, rate, avoid)
        if threat == "cloning":  # a clone elsewhere in the network, often behind other NAT
            plan = IdentityPlan(outside_address(rng), dst, None, int(rng.integers(0, 5000)))
        else:
            params = {"port": float(C2_PORTS[int(rng.integers(len(C2_PORTS)))]),
                      "out": rng.uniform(3.5, 6.0), "in": rng.uniform(4.0, 20.0)}
            plan = IdentityPlan(src, outside_address(rng), None, -1)
    params["plan"] = float(len(plans))
    plans.append(plan)
    return extra_ts, params


def fill_extra(ev: Events, threat: str, params: dict[str, float], base_out: float, base_in: float,
               own_port: int, rng: np.random.Generator) -> None:
    """Columns of an identity attack's extra messages (the plan index rides in `tag`)."""
    n = len(ev.ts)
    ev.kind[:] = KIND_IDENT
    ev.tag[:] = int(params["plan"])
    noise_out, noise_in = np.exp(0.12 * rng.standard_normal(n)), np.exp(0.15 * rng.standard_normal(n))
    if threat == "hijack":
        ev.port[:] = int(params["port"])
        noise_out, noise_in = noise_out * params["out"], noise_in * params["in"]
    else:
        ev.port[:] = own_port
    ev.bout = np.maximum(np.rint(base_out * noise_out), 1).astype(np.int64)
    ev.bin = np.maximum(np.rint(base_in * noise_in), 1).astype(np.int64)
    ev.pout, ev.pin = 1 + ev.bout // 1200, 1 + ev.bin // 1200
    ev.conn[:] = 1
    if threat == "unauthorized_access":
        ev.succ[:] = 1


def plan_lookalikes(devices: FleetDevices, types: DeviceTypeTable, dur_ms: int, attacked: set[int],
                    seed: int) -> Lookalikes:
    """Pick unattacked devices for each benign look-alike (own rng: attack plans are unchanged)."""
    rng = np.random.default_rng([seed, 5])
    out = Lookalikes()
    n = len(devices.ids)
    free = np.array(sorted(set(range(n)) - attacked), dtype=np.int64)
    k = int(round(LOOKALIKE_FRACTION * len(free)))
    if not k or dur_ms < 30_000:
        return out
    lo, hi = min(20_000, dur_ms - 10_000), dur_ms - 5_000
    for kind in ("ip", "fw", "burst"):
        for d in rng.choice(free, size=k, replace=False).tolist():
            at = int(rng.integers(lo, hi))
            if kind == "ip":
                a, b = devices.src[d].rsplit(".", 1)
                out.ip_change[d] = (at, f"{a}.{(int(b) + 100) % 250 + 2}")
            elif kind == "fw":
                firmware = types.types[int(devices.type_of[d])].firmware
                allowed = [f for f in firmware if f != devices.fw[d]]
                if allowed:
                    out.fw_update[d] = (at, allowed[int(rng.integers(len(allowed)))])
            else:
                out.bursts[d] = (at, at + int(rng.integers(5_000, 15_001)), rng.uniform(1.5, 3.0),
                                 rng.uniform(1.5, 3.0))
    out.switch_at = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    for d, (at, _v) in (*out.ip_change.items(), *out.fw_update.items()):
        out.switch_at[d] = min(out.switch_at[d], at)
    return out


def switched(la: Lookalikes, dev: I64, ts: I64) -> npt.NDArray[np.bool_]:
    """Rows (device, ms since start) sent after their device's address change or update."""
    if la.switch_at is None:
        return np.zeros(len(dev), dtype=bool)
    out: npt.NDArray[np.bool_] = ts >= la.switch_at[dev]
    return out


def apply_bursts(la: Lookalikes, dev: I64, ts: I64, bout: I64, bin_: I64) -> None:
    """Benign traffic bursts and update downloads on the [steps, devices] byte grids, in place."""
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
