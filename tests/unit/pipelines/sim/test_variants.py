"""Attack variants: asked for by name, labelled with their real class, never in the default mix."""

from __future__ import annotations

import pytest

from tests.support.devices import KEYS, TYPES
from twinguard.pipelines.sim.fleet import ATTACK_CLASSES, FleetSimulator, SimConfig
from twinguard.pipelines.sim.variants import VARIANTS


def test_a_variant_is_labelled_with_the_class_it_really_is() -> None:
    fleet = FleetSimulator(SimConfig(devices=40, duration_s=60, seed=3, attack_fraction=0.1,
                                     attacks=("exfil_flood",)), TYPES, KEYS)
    assert fleet.labels and {lb.threat for lb in fleet.labels} == {"exfiltration"}
    quiet = FleetSimulator(SimConfig(devices=40, duration_s=60, seed=3, attack_fraction=0.0),
                           TYPES, KEYS)
    assert fleet.expected_events() > quiet.expected_events()  # it floods: extra uploads


def test_variants_stay_out_of_the_default_mix_and_unknown_names_are_refused() -> None:
    assert not set(VARIANTS) & set(ATTACK_CLASSES)
    assert not set(VARIANTS) & set(SimConfig().attacks)
    with pytest.raises(ValueError, match="variants: exfil_flood"):
        SimConfig(attacks=("exfil_flod",))
