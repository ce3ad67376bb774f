"""Real broker: terminal escapes in device-controlled strings never reach an operator's terminal.

Telemetry and activity carrying ESC/OSC sequences, newlines and bidi overrides in firmware,
addresses, principals and user names are dead-lettered with a one-line reason by `twinguard run`;
an intel note (feed-controlled, shown in risk reasons) is printed escaped by `twinguard risk`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.signed_fleet import fleet, processed, produce, report, run, twinguard
from twinguard.pipelines.config import Config

ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e", "\r")
NOTE = "CVE-0000 \x1b]0;pwned\x07\x1b[2J\n   1  100.0  fake-device  forged row"
HOSTILE_TELEMETRY = {  # field -> (value, what the reason must say)
    "fw": ("4.2.0\x1b]0;pwned\x07", "that is a firmware version"),
    "src_ip": ("10.16.0.2\n   1  100.0  fake", "or IPv6 address - at `$.net.src_ip`"),
    "dst_ip": ("1" * 60_000, "of length <= 45 - at `$.net.dst_ip`"),
    "auth": ({"failures": 1, "principal": "ro\u202eot"}, "- at `$.auth.principal`"),
}


def test_escapes_are_dead_lettered_or_printed_escaped(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    intel = {"indicator": "thermostat:4.2.0", "kind": "firmware", "severity": "high", "note": NOTE}
    produce(cfg, cfg.topics.intel, [(b"thermostat:4.2.0", json.dumps(intel).encode())])
    good = fleet(devices=3, seconds=40)
    bad = [report(0, 40 + k, 40 + k, **{field: value})
           for k, (field, (value, _)) in enumerate(HOSTILE_TELEMETRY.items())]
    produce(cfg, cfg.topics.telemetry, good + bad)
    user = {"device_id": "thermostat-000001", "ts": json.loads(good[-1][1])["ts"],
            "user": "op\x1b[2J\x1b[Hroot", "action": "view"}
    produce(cfg, cfg.topics.activity, [(b"thermostat-000001", json.dumps(user).encode())])

    _, dead, twins, config = run(cfg, tmp_path)

    assert processed(twins) + len(dead) == len(good) + len(bad) + 1  # + the activity message
    reasons = sorted(str(d["reason"]) for d in dead)
    for _, want in HOSTILE_TELEMETRY.values():
        assert sum(want in r for r in reasons) == 1, (want, reasons)
    assert sum("that is a name" in r and "$.user" in r for r in reasons) == 1, reasons
    assert all("regex" not in r and len(r) < 200 and "\x1b" not in r for r in reasons)
    assert all(t["fw"] == "4.2.0" for t in twins.values())

    table = twinguard("--config", str(config), "risk")
    assert table.returncode == 0, table.stderr[-2000:]
    assert not any(c in table.stdout + table.stderr for c in ESCAPES), table.stdout
    lines = table.stdout.splitlines()
    assert len(lines) == 2 + 3 + 1, lines  # head, rule, three devices, footer: no forged row
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x0a   1  100.0  fake-device" in table.stdout
    doc = json.loads(twinguard("--config", str(config), "risk", "--json").stdout)
    assert NOTE in doc["ranking"][0]["reasons"][0]  # machines get the exact text, JSON-escaped
