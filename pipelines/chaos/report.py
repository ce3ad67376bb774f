"""The chaos report: JSON file and the table printed to the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def format_table(report: dict[str, Any]) -> str:
    """The headline figures for the terminal."""
    o = report.get("outage") or {}
    rows: list[tuple[str, Any]] = [
        ("events in (incl. malformed)", report["events_in"]),
        ("processed (twin versions)", report["processed"]),
        ("dead-lettered", f"{report['dead_lettered']} (reference {report['dead_lettered_reference']})"),
        ("lost", report["lost"]),
        ("kills (SIGKILL)", report["kills"]),
        ("broker outage", f"{o.get('downtime_s', 0)} s, run exit {o.get('run_exit_code', '-')}"
         + (" (stopped by --until-idle during it)" if o.get("run_stopped_before_input_end") else "")),
        ("threats written / distinct", f"{report['threats_total']} / {report['threats_distinct']}"),
        ("duplicates / same id", f"{report['duplicates']} / {report['duplicates_with_same_id']}"),
        ("re-alerts within cooldown", len(report["realerts_within_cooldown"])),
        ("threats vs reference", f"{report['threats_reference']} reference, "
         f"{len(report['threats_missing_vs_reference'])} missing, "
         f"{len(report['threats_extra_vs_reference'])} extra"),
        ("  same detection, moved window", len(report["threats_moved"])),
        ("  of which not order-sensitive", len(report["differences_not_order_sensitive"])),
        ("reference comparable", "yes" if report["reference_comparable"] else "NO (see warnings)"),
        ("total time", f"{report['timings'].get('total_s', '?')} s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"failure: {f.splitlines()[0]}" for f in report["failures"]]
    lines.append("result: " + ("PASS" if report["ok"] else "FAIL"))
    return "\n".join(lines)
