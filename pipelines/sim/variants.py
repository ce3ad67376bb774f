"""Attack variants: new ways to carry out a known class, outside the default scenario mix.

A variant is planned and injected as its `base` attack with a twist, and labelled with the class it
really is. They exist to measure adaptation (issue 15, 6b: a new variant the shipped model mistypes,
before and after feedback and retraining, `benchmarks/adaptation.py`); `SimConfig(attacks=(...))`
asks for them by name, the default mix never includes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    base: str  # the attack it is planned and injected as
    label: str  # the class it is (its windows' label)
    why: str


VARIANTS: dict[str, Variant] = {
    # data smuggled out in extra uploads at a few times the usual rate, each carrying a few times
    # the usual bytes: below the flood and volume detectors' thresholds, so the model decides, and
    # the shipped model (trained on floods that carry nothing) calls it something else
    "exfil_flood": Variant("dos", "exfiltration",
                           "exfiltration hidden in a flood of small uploads"),
}
EXFIL_FLOOD_BYTES = (8.0, 15.0)  # range of the per-message bytes multiplier of exfil_flood
EXFIL_FLOOD_RATE = (8.0, 30.0)  # extra messages per usual report (a dos floods at 8-30)


def base_attack(name: str) -> str:
    """The attack class a planned attack behaves as."""
    v = VARIANTS.get(name)
    return v.base if v else name


def label_of(name: str) -> str:
    """The class an attack's windows are labelled with."""
    v = VARIANTS.get(name)
    return v.label if v else name
