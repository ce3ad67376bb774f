"""Risk in twin state through the whole graph: the same scores on 1 and 2 workers, attacked and
intel-exposed devices on top, and the demo's riskiest-devices summary."""

from __future__ import annotations

import json
from pathlib import Path

from tests.flow.test_flow import run as run_flow
from tests.flow.test_flow import simulated
from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.pipelines.cli import DEMO_INTEL
from twinguard.pipelines.config import load_config
from twinguard.pipelines.demo import DemoConfig, run_demo
from twinguard.pipelines.flow import Runtime

CFG = load_config(env={}).replace(intel={"file": str(DEMO_INTEL)})
RT = Runtime.from_config(CFG)


def run(batches: list[RawBatch], workers: int) -> list[OutMsg]:
    return run_flow(batches, workers, CFG, RT, batch_size=4)


def latest_twins(out: list[OutMsg]) -> dict[str, dict[str, object]]:
    return {m.key.decode(): json.loads(m.value) for m in out if m.role == "twins"}


def test_risk_is_the_same_on_any_worker_count_and_ranks_attacks_first() -> None:
    batches, fleet, _ = simulated(devices=60, seed=3)
    one, two = (latest_twins(run(batches, w)) for w in (1, 2))
    scores = {d: (t["risk"], t["risk_reasons"]) for d, t in one.items()}
    assert scores == {d: (t["risk"], t["risk_reasons"]) for d, t in two.items()}
    ranked = sorted(one.values(), key=lambda t: -float(str(t["risk"])))
    attacked = {lb.device_id for lb in fleet.labels}
    assert ranked[0]["device_id"] in attacked
    exfil = {lb.device_id for lb in fleet.labels if lb.threat == "exfiltration"}
    assert exfil and all("traffic with intel-listed" in " ".join(scores[d][1]) for d in exfil)


def test_demo_prints_and_saves_the_riskiest_devices(tmp_path: Path,
                                                    capsys: object) -> None:
    summary = run_demo(CFG, DemoConfig(devices=60, duration_s=30, seed=4, out=tmp_path / "demo"))
    top = summary["riskiest"]
    assert len(top) == 5 and [r["rank"] for r in top] == [1, 2, 3, 4, 5]
    assert [r["risk"] for r in top] == sorted((r["risk"] for r in top), reverse=True)
    assert all(r["reasons"] for r in top)
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "riskiest devices" in printed and top[0]["device_id"] in printed
