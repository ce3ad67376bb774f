"""The adaptive-security benchmarks' arithmetic on hand-made outputs: alarm rates around the
verdicts, time to silence, hidden alarms; latency windows around a swap and version switches."""

from __future__ import annotations

from typing import Any

from twinguard.benchmarks import adapt_feedback, adapt_hotswap

AT, END = 100_000, 400_000


def threat(dtype: str, cls: str, detected: int, version: str = "v1") -> dict[str, Any]:
    return {"device_type": dtype, "threat": cls, "detected_at": detected, "window_end": detected - 1,
            "model_version": version}


def test_feedback_rates_before_and_after_and_time_to_silence() -> None:
    threats = [threat("cam", "anomaly", AT + 1 + 10_000 * i) for i in range(6)]  # 6, 10 s apart
    threats += [threat("cam", "anomaly", AT + 65_000), threat("meter", "dos", AT + 5_000)]
    twins = {"c1": {"device_type": "cam", "version": 10, "suppressed_threats": 4},
             "m1": {"device_type": "meter", "version": 5}}
    r = adapt_feedback._measure(threats, twins, {"anomaly": ("id", AT + 60_000)}, "cam", (AT, END), 15)
    assert r["alarms_per_min_before_feedback"] == 6.0  # 6 in the first minute
    assert r["alarms_per_min_after_feedback"] == round(1 / (240_000 / 60_000), 2)
    assert r["seconds_to_silence"] == {"anomaly": 5.0}
    assert r["suppressed_in_twins"] == 4 and r["events_folded"] == 15
    assert r["other_types_alarms_per_min"] == round(1 / 5, 2)


def test_hotswap_latency_windows_and_switches() -> None:
    swap = 1_000_000
    twins = [({"device_id": "a", "last_seen": swap - 5_000 - 100, "version": 3}, swap - 5_000),
             ({"device_id": "a", "last_seen": swap + 1_000 - 300, "version": 4}, swap + 1_000),
             ({"device_id": "b", "last_seen": swap - 100_000, "version": 2}, swap - 99_000)]
    threats = [(threat("cam", "dos", swap - 1, "v1"), 0),
               (threat("cam", "dos", swap + 2_000, adapt_hotswap.NEW_VERSION), 0)]
    r = adapt_hotswap._measure({"twins": twins, "threats": threats, "deadletter": []}, swap, 30, 15, 7)
    assert r["latency_ms_before"]["n"] == 1 and r["latency_ms_before"]["p99"] == 100.0
    assert r["latency_ms_during"]["n"] == 1 and r["latency_ms_during"]["p99"] == 300.0
    assert r["events_folded"] == 6 and r["telemetry_sent"] == 7 and r["twins"] == 2
    assert r["version_switches"] == 1 and r["first_new_version_threat_after_promote_s"] == 2.0
