"""`twinguard demo`: the main job on an embedded simulated fleet prints and saves the riskiest devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinguard.pipelines.cli import DEMO_INTEL
from twinguard.pipelines.config import Config
from twinguard.pipelines.demo import DemoConfig, run_demo


def test_demo_prints_and_saves_the_riskiest_devices(config: Config, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config.replace(intel={"file": str(DEMO_INTEL)})  # `twinguard demo`'s default feed
    summary = run_demo(cfg, DemoConfig(devices=60, duration_s=30, seed=4, out=tmp_path / "demo"))
    top = summary["riskiest"]
    assert len(top) == 5 and [r["rank"] for r in top] == [1, 2, 3, 4, 5]
    assert [r["risk"] for r in top] == sorted((r["risk"] for r in top), reverse=True)
    assert all(r["reasons"] for r in top)
    printed = capsys.readouterr().out
    assert "riskiest devices" in printed and top[0]["device_id"] in printed
    # every action went through the response loop (simulated actuators) and ended in a state
    response = summary["response"]
    counts = {s: n for s, n in response.items() if s not in ("dead_lettered", "devices_contained")}
    assert sum(counts.values()) == summary["actions"]
    assert response["dead_lettered"] == 0 and "response (simulated actuators" in printed
    # actions executed against the embedded actuators, and devices whose twin shows it
    assert response["succeeded"] > 0 and 0 < response["devices_contained"] <= summary["devices_acted_on"]
    assert f"{response['succeeded']} succeeded" in printed
    assert (tmp_path / "demo" / "action_results.jsonl").stat().st_size > 0
