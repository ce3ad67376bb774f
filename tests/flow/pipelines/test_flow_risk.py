"""Risk in twin state through the whole graph: the same scores on 1 and 2 workers, attacked and
intel-exposed devices on top."""

from __future__ import annotations

import json

import pytest

from tests.support.fleet import Recording
from tests.support.flow import run_flow, telemetry_batches
from twinguard.operators.batches import OutMsg
from twinguard.pipelines.cli import DEMO_INTEL
from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import Runtime


@pytest.fixture(scope="module")
def intel_config(config: Config) -> Config:
    """The defaults with the demo intel feed: exfiltration targets are intel-listed addresses."""
    return config.replace(intel={"file": str(DEMO_INTEL)})


@pytest.fixture(scope="module")
def intel_runtime(intel_config: Config) -> Runtime:
    """Its own runtime: the intel table is loaded into the engine context when it is built."""
    return Runtime.from_config(intel_config)


def latest_twins(out: list[OutMsg]) -> dict[str, dict[str, object]]:
    return {m.key.decode(): json.loads(m.value) for m in out if m.role == "twins"}


def test_risk_is_the_same_on_any_worker_count_and_ranks_attacks_first(
        intel_config: Config, intel_runtime: Runtime, small_fleet: Recording) -> None:
    batches, _ = telemetry_batches(small_fleet.batches, seed=3)
    one, two = (latest_twins(run_flow(batches, w, intel_config, intel_runtime)) for w in (1, 2))
    scores = {d: (t["risk"], t["risk_reasons"]) for d, t in one.items()}
    assert scores == {d: (t["risk"], t["risk_reasons"]) for d, t in two.items()}
    ranked = sorted(one.values(), key=lambda t: -float(str(t["risk"])))
    labels = small_fleet.sim.labels
    attacked = {lb.device_id for lb in labels}
    assert ranked[0]["device_id"] in attacked
    exfil = {lb.device_id for lb in labels if lb.threat == "exfiltration"}
    assert exfil and all("traffic with intel-listed" in " ".join(scores[d][1]) for d in exfil)
