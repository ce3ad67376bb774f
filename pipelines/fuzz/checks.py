"""What must hold after a kind's input besides accounting: one function per promise of issue 18,
each returning the problems it found (empty: the promise holds)."""

from __future__ import annotations

import json

import msgspec

from twinguard.pipelines.fuzz.model import PREFIX, Outcome
from twinguard.pipelines.kafka.risk_report import format_table, rank
from twinguard.schemas.messages import TwinState

THERMOSTAT_FW = "4.2.0"  # what catalogue.Context.thermostat reports (the type's first firmware)


def _twins(o: Outcome, kind: str, part: str = "") -> dict[str, dict[str, object]]:
    start = f"{PREFIX}-{kind}-{part}"
    return {d: t for d, t in o.twins.items() if d.startswith(start)}


def identity_kept(o: Outcome) -> list[str]:
    """Item 7: unsigned messages did not rewrite firmware or address; no type switch."""
    bad = []
    for dev, t in sorted(_twins(o, "identity").items()):
        if t.get("fw") != THERMOSTAT_FW or not str(t.get("src_ip", "")).startswith("10.1.0."):
            bad.append(f"{dev}: unsigned messages changed its identity to fw={t.get('fw')!r} "
                       f"src_ip={t.get('src_ip')!r}")
        if t.get("device_type") != "thermostat":
            bad.append(f"{dev}: a signed message switched its type to {t.get('device_type')!r}")
    return bad[:5]


def risk_table_printable(o: Outcome) -> list[str]:
    """Item 8: `twinguard risk` prints no control characters a device sent."""
    twins = [msgspec.convert(t, TwinState) for t in _twins(o, "terminal").values()]
    table = format_table(rank(twins), len(twins))
    bad = sorted({repr(ch) for ch in table if ch != "\n" and not ch.isprintable()})
    return [f"`twinguard risk` prints raw control characters {', '.join(bad)}"] if bad else []


def no_slash0_contacts(o: Outcome) -> list[str]:
    """Item 4: an over-broad 0.0.0.0/0 intel entry did not make every device an intel contact."""
    hit = [d for d, t in _twins(o, "intel", "bystander").items()
           if "intel-listed" in json.dumps(t.get("risk_reasons", []))]
    return [f"0.0.0.0/0 was applied: {len(hit)} devices that contacted no listed address count "
            "as intel contacts"] if hit else []


def intel_reader_alive(o: Outcome) -> list[str]:
    """Item 4: the intel reader thread survived its input (it used to die silently)."""
    dead = [ln for ln in o.logs.splitlines() if "Exception in thread twinguard-intel" in ln]
    return [f"the intel reader thread died ({len(dead)}x): {dead[0][:200]}"] if dead else []


def future_senders_flagged(o: Outcome) -> list[str]:
    """Item 6: devices claiming a time 23 h ahead are called out (clock skew), nobody else is."""
    senders = set(_twins(o, "future_ts"))
    flagged = {str(t["device_id"]) for t in o.threats if "clock_skew" in t.get("detectors", [])}
    out = []
    if senders - flagged:
        out.append(f"{len(senders - flagged)} of {len(senders)} devices sending at now + 23 h "
                   "were not flagged for clock skew")
    others = sorted(d for d in flagged - senders if d.startswith(f"{PREFIX}-base-"))
    if others:
        out.append(f"clock-skew alarms on {len(others)} fleet devices (e.g. {others[0]}): the "
                   "future timestamps moved their partition's mark")
    return out
