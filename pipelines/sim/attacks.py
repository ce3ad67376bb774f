"""Attack planning: which devices are attacked by which class, when, with which concrete messages,
and the labelled interval of each, all decided before any physics runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from twinguard.pipelines.sim import identity
from twinguard.pipelines.sim.clock import ReportClock, send_times
from twinguard.pipelines.sim.devices import FleetDevices, outside_address
from twinguard.pipelines.sim.events import BAD_SIG, NO_SIG
from twinguard.pipelines.sim.fdi import fdi_params, needs_generic
from twinguard.pipelines.sim.variants import EXFIL_FLOOD_BYTES, EXFIL_FLOOD_RATE, base_attack
from twinguard.schemas.device_types import DeviceTypeTable

I64 = npt.NDArray[np.int64]

EXTRA_THREATS = ("dos", "scan", "brute_force")
NEEDS_HISTORY = EXTRA_THREATS + identity.IDENT_THREATS  # extra messages interpolate readings
WINDOW_THREATS = ("dos", "brute_force", "exfiltration", "false_data_injection", "firmware_tampering")


class NoMessagesError(Exception):
    """An attack window holds no message of its device."""


@dataclass
class Attack:
    """One planned attack: its window (ms since start, inclusive) and concrete messages."""

    dev: int
    threat: str
    a0: int
    a1: int
    params: dict[str, float] = field(default_factory=dict)
    extra_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # extra / replay send times
    extra_aux: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # scan port; replay slot
    ks: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # tampered / captured steps
    modes: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # tampering: BAD_SIG / NO_SIG
    slot0: int = 0  # replay: capture slot of ks[0]
    variant: str = ""  # a variant's name (sim/variants.py); `threat` is then its base attack
    label_ts: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class AttackPlan:
    """Every planned attack, plus the strings attacked devices send instead of their own."""

    attacks: list[Attack]
    ident_plans: list[identity.IdentityPlan]  # indexed by an identity attack's params["plan"]
    exfil_dst: dict[int, str]  # device -> where an exfiltration sends
    fw_mod: dict[int, str]     # device -> the tampered firmware it reports


def plan_attacks(rng: np.random.Generator, devices: FleetDevices, clock: ReportClock,
                 types: DeviceTypeTable, *, classes: tuple[str, ...], fraction: float,
                 warmup_s: float, duration_s: float) -> AttackPlan:
    """Choose attacked devices, classes (round robin over a shuffle) and concrete messages."""
    planner = _Planner(devices, clock, types)
    n, dur_ms = len(devices.ids), clock.dur_ms
    if not classes or fraction <= 0.0:
        return planner.result([])
    count = round(fraction * n)
    if n >= len(classes):
        count = max(count, len(classes))
    count = min(max(count, 1), n)
    chosen = rng.choice(n, size=count, replace=False).tolist()
    shuffled = list(classes)
    rng.shuffle(shuffled)
    hi = max(dur_ms - 15_000, 0)
    lo = min(int(warmup_s * 1000), hi)  # a run too short for warmup + 15 s starts late
    attacks = []
    for i, d in enumerate(chosen):
        variant = shuffled[i % len(shuffled)]
        threat = base_attack(variant)
        variant = "" if variant == threat else variant
        # never before the device's first report: floods interpolate from it, replays need it
        first = int(clock.report_ts(np.array([d]), np.zeros(1, np.int64))[0])
        lo_t = min(max(lo, identity.IDENT_START_MS), hi) if threat in identity.IDENT_THREATS else lo
        a0 = max(int(rng.integers(lo_t, hi + 1)), first + 1)
        a1 = dur_ms - 1 if threat in ("firmware_tampering", "hijack") else min(
            a0 + int(rng.integers(10_000, 20_001)), dur_ms - 1)
        at = Attack(int(d), threat, a0, a1, variant=variant)
        try:
            planner.plan(at, rng)
        except NoMessagesError:  # a very short run: widen to everything after the first report
            at = Attack(int(d), threat, first, dur_ms - 1, variant=variant)
            try:
                planner.plan(at, rng)
            except NoMessagesError:
                raise ValueError(f"duration_s={duration_s} is too short to place the "
                                 f"'{threat}' attack on {devices.ids[d]}; use a longer "
                                 "run or attack_fraction=0") from None
        attacks.append(at)
    return planner.result(attacks)


class _Planner:
    """Fills in attacks' messages and labels, collecting the strings they need and capture slots."""

    def __init__(self, devices: FleetDevices, clock: ReportClock, types: DeviceTypeTable) -> None:
        self.devices, self.clock, self.types = devices, clock, types
        self.slot = 0  # next free replay capture slot
        self.ident_plans: list[identity.IdentityPlan] = []
        self.exfil_dst: dict[int, str] = {}
        self.fw_mod: dict[int, str] = {}

    def result(self, attacks: list[Attack]) -> AttackPlan:
        """The plan of these attacks with what the planner collected."""
        return AttackPlan(attacks, self.ident_plans, self.exfil_dst, self.fw_mod)

    def plan(self, at: Attack, rng: np.random.Generator) -> None:
        """Fill in one attack's messages and label interval (NoMessagesError: nothing to label)."""
        if at.a1 < at.a0:
            raise NoMessagesError
        d, devs = at.dev, self.devices
        dt, hz = self.types.types[int(devs.type_of[d])], 1000.0 / float(devs.iv_ms[d])
        _ks, reg_all, kept = self.clock.steps_between(d, at.a0, at.a1)
        reg = reg_all[kept]
        label: list[I64] = [reg]
        if at.threat in EXTRA_THREATS:
            label = self._extra(at, rng, hz, reg, reg_all)
            if at.variant == "exfil_flood":
                at.params = {"mult": rng.uniform(*EXFIL_FLOOD_BYTES)}
        elif at.threat in identity.IDENT_THREATS:
            at.extra_ts, at.params = identity.plan_attack(
                at.threat, (at.a0, at.a1), (devs.src[d], devs.dst[d]), hz, reg_all, rng,
                self.ident_plans)
            label = [at.extra_ts]
        elif at.threat == "exfiltration":
            self.exfil_dst[d] = outside_address(rng)
            at.params = {"mult": rng.uniform(15, 100), "port": float(rng.choice([443, 8443]))}
        elif at.threat == "false_data_injection":
            generic = needs_generic(dt)
            at.params = fdi_params(dt, generic, 1.0 / hz, rng)
            at.params["generic"] = float(generic)
        elif at.threat == "replay":
            self._replay(at, rng, hz)
            label = [at.extra_ts]
        elif at.threat == "tampering":
            label = [reg[self._tamper(at, rng, _ks[kept])]]
        elif at.threat == "firmware_tampering":
            suffix = ("-mod", "-dev", "+dbg", f"-{int(rng.integers(0, 1 << 16)):04x}")
            self.fw_mod[d] = devs.fw[d] + suffix[int(rng.integers(len(suffix)))]
        all_ts = np.concatenate(label)
        if not len(all_ts) or (at.threat == "replay" and not len(at.ks)):
            raise NoMessagesError
        at.label_ts = (int(all_ts.min()), int(all_ts.max()))
        if at.threat == "replay":  # its captures keep their slots only once the attack is placed
            self.slot += len(at.ks)

    def _extra(self, at: Attack, rng: np.random.Generator, hz: float, reg: I64, reg_all: I64
               ) -> list[I64]:
        """A flood, scan or login storm: extra send times (and scan ports); returns label times."""
        if at.threat == "dos":
            rate = rng.uniform(*(EXFIL_FLOOD_RATE if at.variant == "exfil_flood" else (8, 30))) * hz
        elif at.threat == "scan":
            # >= 6 probes/s: even a window that sees only 5 s of the scan gets 30 ports
            rate = max(rng.uniform(3, 10) * hz, rng.uniform(6, 12))
        else:
            rate = rng.uniform(2, 4) * hz
        at.extra_ts = send_times(rng, at.a0, at.a1, rate, reg_all)
        if at.threat != "scan":
            return [reg, at.extra_ts]
        m = len(at.extra_ts)
        if rng.random() < 0.5:  # sequential sweep
            first = int(rng.integers(1, max(1025 - m, 2)))
            ports = (first - 1 + np.arange(m)) % 1024 + 1
        else:  # random order without repeats (cycles if the scan is long)
            ports = np.resize(rng.permutation(1024) + 1, m)
        own = self.devices.port[at.dev]  # a probe of its usual port would look like normal traffic
        at.extra_aux = np.where(ports == own, own % 1024 + 1, ports).astype(np.int64)
        return [at.extra_ts]

    def _tamper(self, at: Attack, rng: np.random.Generator, ks: I64) -> npt.NDArray[np.bool_]:
        """Pick the reports (steps ks) a tamperer alters and how; returns the picked mask."""
        pick = np.zeros(len(ks), bool)
        count = min(int(np.ceil(rng.uniform(0.5, 1.0) * len(ks))), len(ks))
        pick[rng.choice(len(ks), size=count, replace=False)] = True
        at.ks = ks[pick]
        p_missing = rng.uniform(0.0, 0.5)
        at.modes = np.where(rng.random(len(at.ks)) < p_missing, NO_SIG, BAD_SIG)
        at.params = {"frac": rng.uniform(0.02, 0.08)}
        return pick

    def _replay(self, at: Attack, rng: np.random.Generator, hz: float) -> None:
        """Capture the device's last 3..20 genuine messages before the attack; re-send at 2..5/s."""
        want = int(rng.integers(3, 21))
        back = int(np.ceil(want / hz * 1000.0 * 1.5)) + 2000  # enough history despite drops
        ks, _ts, kept = self.clock.steps_between(at.dev, max(at.a0 - back, 0), at.a0 - 1)
        ks = ks[kept][-want:]
        if not len(ks):  # a run too short for the warm-up: capture the first report, replay after it
            ks, ts, kept = self.clock.steps_between(at.dev, at.a0, at.a1 - 1)
            if not kept.any():
                raise NoMessagesError
            ks, at.a0 = ks[kept][:1], int(ts[kept][0]) + 1
        at.ks, at.slot0 = ks, self.slot
        at.extra_ts = send_times(rng, at.a0, at.a1, rng.uniform(2, 5), np.zeros(0, np.int64))
        at.extra_aux = self.slot + np.arange(len(at.extra_ts), dtype=np.int64) % len(ks)
