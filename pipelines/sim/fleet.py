"""Deterministic IoT fleet simulator: coherent per-type physics, signed telemetry, labelled attacks.

One seeded generator feeds the demo, the tests, model training and the benchmarks, so it is built for
speed: report timestamps are a pure function of (device, step) (hash-based jitter and drops), which lets
`__init__` plan every attack and know its labels up front; the physics is vectorised with numpy per
report step over all devices of a type; the only per-message Python work is building the `Telemetry`
struct, signing it and encoding it with msgspec.

Simulated time runs in fixed slices (independent of the batch size), so the concatenated output of
`batches()` is identical for any `max_events` and on every call.

The parts: devices.py (who the devices are), clock.py (when they report), physics.py (what they
report), attacks.py + fdi.py + identity.py (what attackers and benign look-alikes change), run.py +
inject.py (one pass over simulated time), encode.py (signed JSON messages).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.integrity.signatures import KeyRing
from twinguard.pipelines.sim.attacks import plan_attacks
from twinguard.pipelines.sim.clock import DROP_P, ReportClock
from twinguard.pipelines.sim.devices import BROKERS, EXTERNAL_NETS, build_devices
from twinguard.pipelines.sim.identity import IDENT_THREATS, plan_lookalikes
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.pipelines.sim.physics import MODELS, ROC_MARGIN
from twinguard.pipelines.sim.run import FleetPass, FleetPlan
from twinguard.pipelines.sim.variants import VARIANTS, label_of
from twinguard.schemas.device_types import DeviceTypeTable

# BROKERS, EXTERNAL_NETS, MODELS and ROC_MARGIN moved out with their modules; still importable here
__all__ = ["ATTACK_CLASSES", "BROKERS", "EXTERNAL_NETS", "MODELS", "ROC_MARGIN", "FleetSimulator",
           "SimBatch", "SimConfig"]

ATTACK_CLASSES = ("dos", "scan", "brute_force", "exfiltration", "false_data_injection", "replay",
                  "tampering", "firmware_tampering", *IDENT_THREATS)

I64 = npt.NDArray[np.int64]

TARGET_SLICE_EVENTS = 16_000
_SEED_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; validated on construction."""

    devices: int = 500
    duration_s: float = 60.0
    rate: float | None = None      # total fleet events/s of simulated time; None = each type's report_hz
    seed: int = 7
    start_ms: int | None = None    # event time of the first tick; None = now (UTC) rounded to 1 s
    attack_fraction: float = 0.08  # share of devices attacked (>= one per class when devices allow)
    attacks: tuple[str, ...] = ATTACK_CLASSES
    warmup_s: float = 20.0         # no attack starts before start+warmup_s (baselines need history)
    sign: bool = True              # devices sign messages (HMAC)

    def __post_init__(self) -> None:
        """Reject settings the simulator cannot honour, naming the field."""
        if self.devices < 1:
            raise ValueError(f"SimConfig.devices must be >= 1, got {self.devices}")
        if not self.duration_s > 0:
            raise ValueError(f"SimConfig.duration_s must be > 0, got {self.duration_s}")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"SimConfig.rate must be > 0 or None, got {self.rate}")
        if self.rate is not None and self.devices * 1000.0 / self.rate < 1.0:
            raise ValueError(f"SimConfig.rate={self.rate} needs each of {self.devices} devices to "
                             "report more than once per ms; use more devices or a lower rate")
        if not 0.0 <= self.attack_fraction <= 1.0:
            raise ValueError(f"SimConfig.attack_fraction must be in [0, 1], got {self.attack_fraction}")
        unknown = [a for a in self.attacks if a not in ATTACK_CLASSES and a not in VARIANTS]
        if unknown:
            raise ValueError(f"SimConfig.attacks: unknown class(es) {', '.join(unknown)} "
                             f"(known: {', '.join(ATTACK_CLASSES)}; variants: "
                             f"{', '.join(VARIANTS)})")
        if self.warmup_s < 0:
            raise ValueError(f"SimConfig.warmup_s must be >= 0, got {self.warmup_s}")
        if self.start_ms is not None and self.start_ms < 0:
            raise ValueError(f"SimConfig.start_ms must be >= 0, got {self.start_ms}")


@dataclass(frozen=True)
class SimBatch:
    """A time-ordered chunk of encoded telemetry: Kafka keys (device id), values and send times."""

    keys: list[bytes]
    values: list[bytes]
    ts_ms: I64  # send time per message (a replay's old ts stays inside its JSON), non-decreasing

    def __len__(self) -> int:
        """Number of messages."""
        return len(self.values)


class FleetSimulator:
    """Seeded fleet of simulated devices; `batches()` yields their time-ordered encoded telemetry."""

    def __init__(self, cfg: SimConfig, types: DeviceTypeTable, keys: KeyRing) -> None:
        self.cfg, self.types, self.keyring = cfg, types, keys
        self.start_ms = cfg.start_ms if cfg.start_ms is not None else round(time.time()) * 1000
        self.dur_ms = int(round(cfg.duration_s * 1000))
        seed = cfg.seed & _SEED_MASK
        fleet = build_devices(cfg.devices, cfg.rate, types, np.random.default_rng([seed, 0]))
        self.devices: list[tuple[str, str]] = list(zip(fleet.ids, fleet.type_names, strict=True))
        self.type_of = fleet.type_of
        self.clock = ReportClock(seed, fleet.iv_ms, fleet.phase, self.dur_ms)
        attacks = plan_attacks(np.random.default_rng([seed, 1]), fleet, self.clock, types,
                               classes=cfg.attacks, fraction=cfg.attack_fraction,
                               warmup_s=cfg.warmup_s, duration_s=cfg.duration_s)
        self._lookalikes = plan_lookalikes(fleet, types, self.dur_ms,
                                           {a.dev for a in attacks.attacks}, seed)
        self.labels: list[AttackLabel] = sorted(
            (AttackLabel(fleet.ids[a.dev], label_of(a.variant or a.threat),
                         self.start_ms + a.label_ts[0],
                         self.start_ms + a.label_ts[1]) for a in attacks.attacks),
            key=lambda lb: (lb.start, lb.device_id))
        eps = float(np.sum(1000.0 / fleet.iv_ms))
        slice_ms = int(np.clip(TARGET_SLICE_EVENTS / eps * 1000.0, 100, 10_000))
        self._plan = FleetPlan(seed, self.start_ms, slice_ms, cfg.sign, types, keys, fleet,
                               self.clock, attacks, self._lookalikes)
        # pipelines/sim/activity.py sets this so commanded devices follow (or defy) their commands
        self.control: Any = None

    def expected_events(self) -> int:
        """Approximate number of messages `batches()` yields (for progress bars)."""
        regular = float(np.sum(self.dur_ms / self.clock.iv_ms)) * (1.0 - DROP_P)
        extra = sum(len(a.extra_ts) for a in self._plan.attacks.attacks)
        return int(round(regular)) + extra

    def batches(self, max_events: int = 5000) -> Iterator[SimBatch]:
        """Time-ordered chunks of at most max_events messages covering the whole duration."""
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        keys: list[bytes] = []
        values: list[bytes] = []
        stamps: list[I64] = []
        for k, v, ts in FleetPass(self._plan, self.control).slices():
            keys += k
            values += v
            stamps.append(ts)
            if len(values) < max_events:
                continue
            all_ts, i = np.concatenate(stamps), 0
            while len(values) - i >= max_events:
                j = i + max_events
                yield SimBatch(keys[i:j], values[i:j], all_ts[i:j])
                i = j
            keys, values, stamps = keys[i:], values[i:], [all_ts[i:]]
        if values:
            yield SimBatch(keys, values, np.concatenate(stamps))

