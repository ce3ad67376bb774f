"""The fuzz report: JSON file and the table printed to the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REASONS_SHOWN = 10


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def format_table(report: dict[str, Any]) -> str:
    """Per kind of input: produced, processed, dead-lettered, lost, verdict; then the totals."""
    kinds: dict[str, dict[str, Any]] = report["kinds"]
    w = max(len("kind"), *map(len, kinds))
    lines = [f"{'kind':<{w}}  {'item':>4}  {'produced':>8}  {'processed':>9}  {'dead':>7}  "
             f"{'lost':>6}  result"]
    for name, k in kinds.items():
        lines.append(f"{name:<{w}}  {k['item']:>4}  {k['produced']:>8}  {k['processed']:>9}  "
                     f"{k['dead_lettered'] + k['intel_dead_lettered']:>7}  {k['lost']:>6}  "
                     f"{_verdict(k)}")
    rss = report["peak_rss_mb"]
    lines += [
        "",
        f"inputs tried: {report['inputs_tried']}   crashes: {report['crashes']} (restarts "
        f"{report['restarts']})   lost: {report['lost']}   dead-lettered: "
        f"{report['dead_lettered']}   peak RSS: {f'{rss:.0f} MB' if rss else '?'}",
        "dead letters by reason: " + "; ".join(
            f"{r} {n}" for r, n in list(report["dead_letter_reasons"].items())[:REASONS_SHOWN]),
    ]
    lines += [f"crash: {e}" for e in report["crash_errors"]]
    lines += [f"problem: {p}" for p in report["problems"]]
    if report["failed_kinds"]:
        items = sorted({kinds[n]["item"] for n in report["failed_kinds"] if n in kinds} - {""})
        lines.append(f"failed kinds: {', '.join(report['failed_kinds'])} (issue 18 items "
                     f"{', '.join(items) or '-'})")
    elif not report["ok"]:
        lines.append("failed kinds: none alone; the mixed run failed (an interaction of kinds)")
    lines.append(f"result: {'PASS' if report['ok'] else 'FAIL'} "
                 f"({report['timings'].get('total_s', '?')} s)")
    return "\n".join(lines)


def _verdict(k: dict[str, Any]) -> str:
    if k["ok"]:
        return "ok"
    why = [f"crash: {k['crashes'][0][:90]}"] if k["crashes"] else []
    why += [f"{k['lost']} lost"] if k["lost"] else []
    why += [p[:90] for p in k["problems"][:2]]
    return "FAIL " + "; ".join(why)
