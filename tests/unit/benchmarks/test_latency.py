"""The e2e latency breakdown: stages per attack and per class, and their results.md rendering."""

from __future__ import annotations

from typing import Any

from twinguard.benchmarks.e2e_suite import latencies
from twinguard.benchmarks.report import _latency_stages
from twinguard.pipelines.sim.labels import AttackLabel


def _threat(dev: str, cls: str, ws: int, we: int, at: int) -> dict[str, Any]:
    return {"id": f"{dev}-{cls}-{we}", "device_id": dev, "threat": cls, "window_start": ws,
            "window_end": we, "detected_at": at, "detectors": []}


def test_stages_split_latency_into_evidence_engine_and_sink() -> None:
    labels = [AttackLabel("d1", "dos", 1_000, 5_000), AttackLabel("d2", "hijack", 2_000, 9_000)]
    found = [
        (_threat("d1", "dos", 0, 1_300, 1_500), 1_600, 2),  # early row: evidence 300
        (_threat("d2", "hijack", 0, 10_000, 12_400), 12_500, 2),  # closed window
        (_threat("d1", "dos", 0, 10_000, 12_200), 12_300, 2),  # later threat: not the first
    ]
    lat = latencies(found, labels, window_ms=10_000)
    by_dev = {a["device_id"]: a for a in lat["attacks"]}
    assert by_dev["d1"] | {"detectors": []} == {
        "threat": "dos", "device_id": "d1", "latency_ms": 600, "closed_window": False,
        "detectors": [], "engine_ms": 200, "sink_ms": 100, "evidence_ms": 300}
    d2 = by_dev["d2"]
    assert (d2["latency_ms"], d2["evidence_ms"], d2["engine_ms"], d2["sink_ms"]) == (
        10_500, 8_000, 2_400, 100)
    assert d2["closed_window"]
    assert lat["attacks_by_closed_window"] == 1
    assert lat["per_class"]["hijack"]["latency_ms"]["p50"] == 10_500
    assert lat["threat_engine_ms"]["early_rows"]["n"] == 1
    assert lat["threat_engine_ms"]["closed_windows"]["n"] == 2
    lat.pop("attacks")
    text = "\n".join(_latency_stages(lat))
    assert "| hijack | 1 |" in text and "evidence" in text
