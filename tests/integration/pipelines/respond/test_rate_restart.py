"""Rate limits survive kill -9 of `twinguard respond`: the budget comes back from the results topic,
so a restarted service does not get a fresh one (and a held start waits for the window)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.support.respond import (
    action,
    publish_actions,
    publish_twins,
    respond_process,
    results,
    site_config,
    wait_for,
)
from twinguard.pipelines.config import Config

PER_MIN = 3  # commands actuator: 3 starts, then one more every 20 s
WINDOW_MS = 60_000 // PER_MIN
FLEET = {f"thermostat-{i:06d}": "thermostat" for i in range(PER_MIN + 1)}
RATES = f"""[respond.rate_per_min]
commands = "{PER_MIN}"
"""


def test_a_rate_limit_reached_before_kill_9_still_holds_after_the_restart(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    conf = site_config(cfg, tmp_path / "site.toml", f"respond-{cfg.topics.actions}", RATES)
    log = tmp_path / "respond.log"
    publish_twins(cfg, FLEET)
    acts = [action(d, "failsafe") for d in FLEET]
    publish_actions(cfg, acts)
    first = respond_process(conf, log)
    try:
        held = wait_for("the limit to be reached", lambda: (r := results(cfg)) and sum(
            x.status == "succeeded" for x in r.values()) == PER_MIN and [
            x for x in r.values() if x.status == "pending"], timeout_s=120)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    [waiting] = held
    assert waiting.hold == "rate" and "rate limit of commands (3/min)" in waiting.reason
    first_start = min(r.executed_at or 0 for r in results(cfg).values() if r.status == "succeeded")
    restarts = log.read_text().count("actions restored from")
    second = respond_process(conf, log)
    try:
        wait_for("the restarted service to be serving",
                 lambda: log.read_text().count("actions restored from") > restarts, timeout_s=120)
        ready_ms = time.time() * 1000
        done = wait_for("the held action to start once the budget allows", lambda: (
            r := results(cfg).get(waiting.action_id)) and r.status == "succeeded" and r,
            timeout_s=120)
    finally:
        second.terminate()
        second.wait(30)
    # the restarted service served inside the window: a fresh budget would have started it at once
    assert ready_ms < first_start + WINDOW_MS, "restart slower than the rate window: inconclusive"
    assert done.executed_at is not None
    assert done.executed_at >= first_start + WINDOW_MS - 1_000, (done.executed_at - first_start)
    assert sum(r.status == "succeeded" for r in results(cfg).values()) == PER_MIN + 1
