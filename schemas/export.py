"""Write schemas/json/<role>.v<N>.json from the msgspec Structs: `python -m twinguard.schemas.export`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec

from twinguard.schemas.messages import SCHEMA_VERSION, TOPIC_SCHEMAS

HERE = Path(__file__).parent


def generated(role: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) a Struct defines, with a versioned $id."""
    schema: dict[str, Any] = _normalised(msgspec.json.schema(TOPIC_SCHEMAS[role]))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://twinguard.dev/schemas/{role}.v{SCHEMA_VERSION}.json",
        "title": f"twinguard {role} message v{SCHEMA_VERSION}",
        **schema,
    }


def _normalised(node: Any) -> Any:
    """Descriptions reflowed: paragraphs kept, each on one line. The files then do not depend on how a
    msgspec version renders docstrings (0.23 stopped dedenting them, and the schemas changed)."""
    if isinstance(node, dict):
        return {k: _reflow(v) if k == "description" and isinstance(v, str) else _normalised(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_normalised(v) for v in node]
    return node


def _reflow(text: str) -> str:
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def render(role: str) -> str:
    return json.dumps(generated(role), indent=2, sort_keys=True) + "\n"


def main() -> None:
    for role in TOPIC_SCHEMAS:
        path = HERE / "json" / f"{role}.v{SCHEMA_VERSION}.json"
        path.write_text(render(role))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
