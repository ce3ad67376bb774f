"""`twinguard demo --dashboard` / `dashboard --from-dir`: a demo's JSON-lines outputs on the same page,
served over HTTP: the snapshot, the event stream's first state, counted unreadable lines, a clear
error for a folder that is not a demo's."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import msgspec
import pytest

from tests.support.threats import threat_event, twin_state
from twinguard.pipelines.dashboard.feeds import load_demo
from twinguard.pipelines.dashboard.server import serve
from twinguard.pipelines.dashboard.state import KEEP_MS, DashboardState

T0 = 1_750_000_000_000


def _demo_dir(tmp_path: Path) -> Path:
    twins = [twin_state("therm-1", risk=50.0, status="under_attack"), twin_state("therm-2"),
             twin_state("cam-1", "ip_camera", "learning")]
    threats = [threat_event("a" * 24, "therm-1", "dos", "high", T0),
               threat_event("b" * 24, "therm-1", "scan", "low", T0 + 3000),
               threat_event("a" * 24, "therm-1", "dos", "high", T0)]  # a re-emitted duplicate
    (tmp_path / "twins.jsonl").write_bytes(b"\n".join(msgspec.json.encode(t) for t in twins))
    (tmp_path / "threats.jsonl").write_bytes(
        b"\n".join([*(msgspec.json.encode(t) for t in threats), b'{"id": 1}']) + b"\n")
    return tmp_path


def test_demo_outputs_are_served_as_snapshot_and_event_stream(tmp_path: Path) -> None:
    state = DashboardState("demo")
    load_demo(_demo_dir(tmp_path), state)
    server = serve(state, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(server.url + "api/state", timeout=10) as r:  # noqa: S310
            snap = json.load(r)
        with urllib.request.urlopen(server.url + "events", timeout=10) as r:  # noqa: S310
            assert r.readline() == b"event: state\n"
            first = json.loads(r.readline().removeprefix(b"data: "))
        with urllib.request.urlopen(server.url, timeout=10) as r:  # noqa: S310
            assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
            assert b"http://" not in r.read().replace(b"http://www.w3.org/2000/svg", b"")
    finally:
        server.close()
    assert first == snap
    assert snap["devices"] == 3 and snap["fleet"]["thermostat"] == {"under_attack": 1, "normal": 1}
    assert [t["id"][0] for t in snap["threats"]] == ["b", "a"]  # newest first, duplicate dropped
    assert snap["counts"] == {"threats": 2, "duplicates": 1, "unreadable_threats": 1}
    assert snap["risk"][0]["device_id"] == "therm-1"
    # window ends T0 - 1 ms and T0 + 2.999 s: one-second bars from the second before T0
    assert snap["series"]["bucket_ms"] == 1000 and snap["series"]["starts"][0] == T0 - 1000
    assert snap["series"]["classes"] == {"dos": [1, 0, 0, 0], "scan": [0, 0, 0, 1]}
    assert "no consumer lag" in snap["lag_note"]


def test_a_folder_without_demo_outputs_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="point --from-dir at a `twinguard demo --out`"):
        load_demo(tmp_path, DashboardState("demo"))


def test_threats_over_time_use_wider_bars_for_longer_spans_and_forget_old_seconds() -> None:
    state = DashboardState("test")
    for i, minute in enumerate((0, 4, 9)):
        state.add_threat(threat_event(f"{i:024d}", "d1", detected_at=T0 + minute * 60_000 + 1))
    series = state.snapshot()["series"]
    assert series["bucket_ms"] == 30_000 and sum(series["classes"]["brute_force"]) == 3
    state.add_threat(threat_event("x" * 24, "d1", detected_at=T0 + KEEP_MS + 120_001))
    series = state.snapshot()["series"]
    assert sum(series["classes"]["brute_force"]) == 3  # the first minute's threat was forgotten
    assert series["starts"][0] >= T0 + 120_000


def test_a_foreign_host_name_is_refused_on_loopback(tmp_path: Path) -> None:
    state = DashboardState("demo")
    load_demo(_demo_dir(tmp_path), state)
    server = serve(state, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        asked = urllib.request.Request(server.url + "api/state",  # noqa: S310 - http
                                       headers={"Host": f"attacker.example:{port}"})
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(asked, timeout=10)  # noqa: S310 - http
        local = urllib.request.Request(server.url + "api/state",  # noqa: S310 - http
                                       headers={"Host": f"localhost:{port}"})
        with urllib.request.urlopen(local, timeout=10) as r:  # noqa: S310 - http
            assert json.load(r)["devices"] == 3
    finally:
        server.close()
