"""`twinguard risk`: the fleet ranked by risk score with the top reasons — the patch-priority list.

Reads the compacted twins topic (the latest twin per device; an empty value deletes a device) or a
twins JSON-lines file (`--twins`, e.g. the demo's), and ranks by the `risk` each twin carries
(operators/twin/risk.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
from tqdm import tqdm

from twinguard.operators.io.kafka import scan_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.text import printable
from twinguard.schemas.messages import TwinState

_decoder = msgspec.json.Decoder(TwinState)
REASONS_SHOWN = 3


@dataclass(frozen=True)
class RiskRow:
    rank: int
    device_id: str
    device_type: str
    risk: float
    status: str
    fw: str | None
    threats_total: int
    reasons: list[str]


@dataclass
class FleetTwins:
    """Latest twin per device, plus how many records could not be read (reported, not hidden)."""

    twins: dict[str, TwinState]
    unreadable: int = 0


def latest_twins(records: Iterable[tuple[bytes | None, bytes | None]]) -> FleetTwins:
    """Compacted-topic semantics over (key, value) records in order: the last value per key wins."""
    out = FleetTwins({})
    for key, value in records:
        if not value:
            if key is not None:
                out.twins.pop(key.decode("utf-8", "replace"), None)
            continue
        try:
            twin = _decoder.decode(value)
        except msgspec.DecodeError:
            out.unreadable += 1
            continue
        out.twins[twin.device_id] = twin
    return out


def rank(twins: Iterable[TwinState], top: int | None = None,
         device_type: str | None = None) -> list[RiskRow]:
    """Highest risk first (ties: more threats, then device id); optionally one device type."""
    chosen = [t for t in twins if device_type is None or t.device_type == device_type]
    chosen.sort(key=lambda t: (-t.risk, -t.threats_total, t.device_id))
    return [RiskRow(i + 1, t.device_id, t.device_type, t.risk, t.status, t.fw, t.threats_total,
                    list(t.risk_reasons)) for i, t in enumerate(chosen[:top] if top else chosen)]


def read_fleet(cfg: Config, progress: bool = True) -> FleetTwins:
    """The latest twin of every device in the twins topic."""
    msgs = scan_topic(cfg.kafka.client_settings(), cfg.topics.twins)
    bar = tqdm(msgs, desc=f"reading {cfg.topics.twins}", unit="twin", unit_scale=True,
               disable=None if progress else True, leave=False)  # None: only on a terminal
    return latest_twins((m.key(), m.value()) for m in bar)


def read_fleet_file(path: Path) -> FleetTwins:
    """The latest twin per device from a twins JSON-lines file (e.g. `twinguard demo`'s)."""
    if not path.is_file():
        raise FileNotFoundError(f"twins file {path} does not exist")
    return latest_twins((None, line) for line in path.read_bytes().splitlines() if line.strip())


def format_table(rows: list[RiskRow], fleet_size: int) -> str:
    """The ranking as a terminal table; every string from a twin is escaped (`printable`), so a
    device's firmware or an intel note cannot clear the screen or forge rows."""
    if not rows:
        return "no twins found: has `twinguard run` processed any telemetry yet?"
    cells = [(printable(r.device_id), printable(r.device_type), printable(r.status),
              printable(r.fw or "-"), printable("; ".join(r.reasons[:REASONS_SHOWN]) or "-"))
             for r in rows]
    w_dev = max(len("device"), *(len(c[0]) for c in cells))
    w_type = max(len("type"), *(len(c[1]) for c in cells))
    w_fw = max(len("firmware"), *(len(c[3]) for c in cells))
    head = (f"{'rank':>4}  {'risk':>5}  {'device':<{w_dev}}  {'type':<{w_type}}  "
            f"{'status':<12}  {'firmware':<{w_fw}}  top reasons")
    lines = [head, "-" * len(head)]
    for r, (dev, dtype, status, fw, why) in zip(rows, cells, strict=True):
        lines.append(f"{r.rank:>4}  {r.risk:>5.1f}  {dev:<{w_dev}}  {dtype:<{w_type}}  "
                     f"{status:<12}  {fw:<{w_fw}}  {why}")
    lines.append(f"{len(rows)} of {fleet_size} devices shown, highest risk first")
    return "\n".join(lines)


def as_json(rows: list[RiskRow], fleet: FleetTwins) -> str:
    doc: dict[str, Any] = {"devices": len(fleet.twins), "unreadable_records": fleet.unreadable,
                           "ranking": [asdict(r) for r in rows]}
    return json.dumps(doc, indent=2)
