"""Real broker, real headless Chromium: the dashboard page shows the fleet from the twins topic and the
threats already in the topic, a threat produced while the page is open appears on it within 2 s
(pushed by server-sent events), and device-controlled text is shown as text, never run as HTML."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import Browser
from tests.support.kafka import produce
from tests.support.threats import encoded, encoded_twin, threat_event, twin_state
from twinguard.pipelines.config import Config
from twinguard.pipelines.dashboard.feeds import follow_kafka
from twinguard.pipelines.dashboard.server import DashboardServer, serve
from twinguard.pipelines.dashboard.state import DashboardState

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
NEW_THREAT_WITHIN_S = 2.0


@pytest.fixture
def dashboard(unique_topics: Config) -> Iterator[DashboardServer]:
    """The live dashboard of `unique_topics` on a free port, its feeds stopped afterwards."""
    stop = threading.Event()
    state = DashboardState(f"test broker {unique_topics.kafka.brokers}")
    follow_kafka(unique_topics, state, stop)
    server = serve(state, "127.0.0.1", 0)
    yield server
    stop.set()
    server.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


def _state(server: DashboardServer) -> dict[str, object]:
    with urllib.request.urlopen(server.url + "api/state", timeout=10) as r:  # noqa: S310 - http
        return dict(json.load(r))


def test_a_threat_produced_to_the_topic_appears_on_the_open_page(
        unique_topics: Config, dashboard: DashboardServer, browser: Browser, tmp_path: Path) -> None:
    cfg = unique_topics
    now = int(time.time() * 1000)
    produce(cfg, cfg.topics.twins, [
        encoded_twin(twin_state("therm-001", status="under_attack", risk=62.5, updated_at=now)),
        encoded_twin(twin_state("therm-002", updated_at=now)),
        encoded_twin(twin_state("cam-001", "ip_camera", "suspect", 30.0, updated_at=now)),
    ])
    produce(cfg, cfg.topics.threats, [
        encoded(threat_event("a" * 24, "therm-001", "brute_force", "high", now - 20_000)),
        encoded(threat_event("b" * 24, "cam-001", "scan", "medium", now - 10_000,
                             device_type="ip_camera", reason=HOSTILE)),
    ])
    browser.open(dashboard.url)
    browser.wait_for("document.body.dataset.live === 'yes' && "
                     "document.querySelectorAll('#feed tr').length === 2 && "
                     "document.getElementById('devices').textContent === '3'", timeout_s=60)

    fresh = "f" * 24
    produce(cfg, cfg.topics.threats, [encoded(threat_event(fresh, "therm-002", "dos", "critical",
                                                           int(time.time() * 1000)))])
    took = browser.wait_for(f"!!document.querySelector('#feed tr[data-threat-id=\"{fresh}\"]')",
                            timeout_s=NEW_THREAT_WITHIN_S)
    print(f"\nnew threat on the page {took * 1000:.0f} ms after the broker confirmed it")

    feed = browser.evaluate("Array.from(document.querySelectorAll('#feed tr'), r => r.innerText)")
    assert "therm-002" in feed[0] and "critical" in feed[0]  # newest first
    assert any(HOSTILE in row for row in feed)  # shown as text ...
    assert browser.evaluate("document.querySelectorAll('img').length") == 0  # ... never as HTML
    assert browser.evaluate("document.title") == "twinguard dashboard"
    browser.wait_for("document.querySelectorAll('#chart rect').length >= 3", timeout_s=10)
    risk = browser.evaluate("Array.from(document.querySelectorAll('#risk tr'), r => r.cells[2]"
                            ".innerText)")
    assert risk[:2] == ["therm-001", "cam-001"]
    fleet = browser.evaluate("Array.from(document.querySelectorAll('#fleet tr'), r => r.innerText)")
    assert len(fleet) == 2 and any(r.startswith("thermostat") for r in fleet)

    browser.wait_for("document.querySelectorAll('#lag tr').length === 2", timeout_s=30)
    lag = browser.evaluate("Array.from(document.querySelectorAll('#lag tr'), r => r.cells[0]"
                           ".innerText)")
    assert sorted(lag) == sorted([cfg.topics.telemetry, cfg.topics.activity])
    assert _state(dashboard)["devices"] == 3  # the same snapshot as JSON, for scripts
    shot = browser.screenshot(tmp_path / "dashboard.png")
    assert shot.stat().st_size > 10_000
    print(f"dashboard screenshot: {shot}")
