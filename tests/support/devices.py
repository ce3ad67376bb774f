"""The shipped device types and the development key ring, loaded once for every test module.

Module constants rather than fixtures: Hypothesis strategies and per-module constants (a type's
index, its signal slots) need them when the test module is imported.
"""

from __future__ import annotations

from twinguard.operators.integrity.signatures import DEV_MASTER, KeyRing
from twinguard.schemas.device_types import load_device_types

TYPES = load_device_types()
KEYS = KeyRing(DEV_MASTER)
METER = TYPES.index["smart_meter"]
THERMOSTAT = TYPES.index["thermostat"]
