"""Threat-intel messages as a feed publishes them: the demo feed plus the cases a reader must handle."""

from __future__ import annotations

import json

from twinguard.pipelines.cli import DEMO_INTEL

HOUR_MS = 3_600_000


def intel_messages(now_ms: int) -> list[tuple[bytes, bytes]]:
    """The demo feed, a malformed message, a withdrawn (tombstoned) and an expired indicator."""
    feed = [line for line in DEMO_INTEL.read_bytes().splitlines() if line.startswith(b"{")]
    msgs = [(json.loads(line)["indicator"].encode(), line) for line in feed]
    withdrawn = b'{"indicator": "thermostat:4.3.0", "kind": "firmware", "severity": "critical"}'
    expired = (b'{"indicator": "smart_meter:7.0.3", "kind": "firmware", "severity": "critical", '
               b'"expires_at": ' + str(now_ms - HOUR_MS).encode() + b"}")
    return [*msgs, (b"thermostat:4.3.0", withdrawn), (b"oops", b"{not intel"),
            (b"smart_meter:7.0.3", expired), (b"thermostat:4.3.0", b"")]
