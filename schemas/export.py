"""Write schemas/json/<role>.v<N>.json from the msgspec Structs: `python -m schemas.export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from schemas.messages import SCHEMA_VERSION, TOPIC_SCHEMAS

HERE = Path(__file__).parent


def generated(role: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) a Struct defines, with a versioned $id."""
    schema: dict[str, Any] = msgspec.json.schema(TOPIC_SCHEMAS[role])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://twinguard.dev/schemas/{role}.v{SCHEMA_VERSION}.json",
        "title": f"twinguard {role} message v{SCHEMA_VERSION}",
        **schema,
    }


def render(role: str) -> str:
    return json.dumps(generated(role), indent=2, sort_keys=True) + "\n"


def main() -> None:
    for role in TOPIC_SCHEMAS:
        path = HERE / "json" / f"{role}.v{SCHEMA_VERSION}.json"
        path.write_text(render(role))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
