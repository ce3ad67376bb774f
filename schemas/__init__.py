"""Message contracts, device-type twin models and the names shared by every twinguard component."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from twinguard.schemas.messages import SCHEMA_VERSION, TOPIC_SCHEMAS


def json_schema(role: str) -> dict[str, Any]:
    """The published JSON Schema of a topic role (telemetry, threats, ...)."""
    if role not in TOPIC_SCHEMAS:
        raise KeyError(f"no schema for topic role '{role}' (known: {', '.join(TOPIC_SCHEMAS)})")
    text = resources.files("twinguard.schemas").joinpath(f"json/{role}.v{SCHEMA_VERSION}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def example(role: str) -> dict[str, Any]:
    """The example message shipped for a topic role."""
    example_doc: dict[str, Any] = json.loads(
        resources.files("twinguard.schemas").joinpath(f"examples/{role}.json").read_text())
    return example_doc
