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


def test_evidence_is_complete_at_the_devices_next_message_or_after_the_lateness() -> None:
    import numpy as np

    from twinguard.benchmarks.e2e_suite import evidence_complete

    keys = [b"d1", b"d2", b"d1", b"d1", b"d3"]
    sends = np.array([9_000, 9_500, 10_400, 11_000, 12_000], dtype=np.int64)
    found = [
        (_threat("d1", "dos", 0, 10_000, 10_500), 10_600, 2),  # next d1 message at 10,400
        (_threat("d2", "scan", 0, 10_000, 12_100), 12_200, 2),  # d2 silent: end + lateness
        (_threat("d1", "dos", 10_000, 10_401, 10_450), 10_500, 2),  # early row: its last message
        (_threat("d3", "dos", 0, 10_000, 12_250), 12_300, 2),  # next message after the lateness
    ]
    done = evidence_complete(found, keys, sends, window_ms=10_000, lateness_ms=2_000)
    assert done == [10_400, 12_000, 10_400, 12_000]
    lat = latencies(found, [], window_ms=10_000, complete_at=done)
    assert lat["append_minus_evidence_complete"]["max"] == 300
    assert lat["append_minus_evidence_complete"]["n"] == 4
    assert lat["evidence_complete_to_detected_ms"]["max"] == 250  # d3: judged 250 ms after
    assert lat["append_minus_window_end"]["max"] == 2_300


def test_an_early_rows_evidence_is_complete_when_its_trigger_message_was_sent() -> None:
    import numpy as np

    from twinguard.benchmarks.e2e_suite import evidence_complete

    replay = _threat("d1", "replay", 10_000, 10_401, 11_000) | {
        "source": {"partition": 2, "first_offset": 7, "last_offset": 9}}
    found = [(replay, 11_050, 2)]
    keys, sends = [b"d1"], np.array([10_400], dtype=np.int64)
    # the replayed message at offset 9 was sent 500 ms after the device's last authentic one
    assert evidence_complete(found, keys, sends, 10_000, 2_000, {(2, 9): 10_900}) == [10_900]
    assert evidence_complete(found, keys, sends, 10_000, 2_000, {}) == [10_400]
