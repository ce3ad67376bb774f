"""Contracts: schema files match the Structs, examples validate, device-type files load and fail clearly."""

from __future__ import annotations

import json

import jsonschema
import msgspec
import pytest

from twinguard import schemas
from twinguard.schemas.device_types import DeviceTypeError, load_device_types, parse_device_type
from twinguard.schemas.export import render
from twinguard.schemas.features import FEATURE_NAMES, N_FEATURES
from twinguard.schemas.messages import SCHEMA_VERSION, TOPIC_SCHEMAS


@pytest.mark.parametrize("role", sorted(TOPIC_SCHEMAS))
def test_schema_file_is_generated_from_the_struct(role: str) -> None:
    on_disk = json.dumps(schemas.json_schema(role), indent=2, sort_keys=True) + "\n"
    assert on_disk == render(role), f"run `python -m twinguard.schemas.export` (schema v{SCHEMA_VERSION})"


@pytest.mark.parametrize("role", sorted(TOPIC_SCHEMAS))
def test_example_validates_in_both_worlds(role: str) -> None:
    doc = schemas.example(role)
    jsonschema.validate(doc, schemas.json_schema(role))
    msgspec.convert(doc, TOPIC_SCHEMAS[role])


def test_schema_rejects_what_the_decoder_rejects() -> None:
    doc = schemas.example("telemetry") | {"seq": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schemas.json_schema("telemetry"))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(doc, TOPIC_SCHEMAS["telemetry"])


def test_shipped_device_types() -> None:
    table = load_device_types()
    assert {"thermostat", "smart_meter", "pump_plc", "ip_camera", "infusion_pump"} <= set(table.index)
    assert (table.lo < table.hi)[~(table.lo != table.lo)].all()
    assert len(FEATURE_NAMES) == N_FEATURES == len(set(FEATURE_NAMES))


@pytest.mark.parametrize(("text", "message"), [
    ('name="x"\nreport_hz=1\n[[signals]]\nname="a"\nmin=1\nmax=0\n', "min < max"),
    ('name="x"\nreport_hz=1\n[[signals]]\nname="a"\nmax=1\n', "missing key"),
    ('name="x"\nreport_hz=1\n[[signals]]\nname="a"\nmin=0\nmax=1\n'
     '[[invariants]]\nkind="ratio_between"\na="a"\nb="zz"\n', "unknown signal 'zz'"),
    ('name="x"\nreport_hz=1\n[[signals]]\nname="a"\nmin=0\nmax=1\n'
     '[[invariants]]\nkind="magic"\na="a"\nb="a"\n', "kind 'magic' unknown"),
])
def test_bad_device_type_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(DeviceTypeError, match=message):
        parse_device_type(text, "x.toml")


def test_descriptions_do_not_depend_on_docstring_rendering() -> None:
    from twinguard.schemas.export import _reflow

    indented = "First line\n    continues here.\n\n    Second paragraph\n    ends."
    dedented = "First line\ncontinues here.\n\nSecond paragraph\nends."
    assert _reflow(indented) == _reflow(dedented) == "First line continues here.\n\nSecond paragraph ends."
