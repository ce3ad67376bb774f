"""Real broker: one step of the sustained suite with a two-process dataflow: every paced message
is accounted for, both processes consume, and the step reports the pipeline's delay next to the
older append - window_end figure (whether the step holds depends on the machine: not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from twinguard.benchmarks import sustained
from twinguard.pipelines.flow import Runtime


def test_a_two_process_step_accounts_for_every_message(kafka_brokers: str, runtime: Runtime,
                                                       tmp_path: Path) -> None:
    res = sustained.run(kafka_brokers, runtime, per_device_rate=1.2, gen_rate=20_000,
                        logdir=tmp_path, partitions=2, config_path=None, start_rate=300,
                        duration_s=20, refine=0, max_steps=1, processes=2)

    assert res["processes"] == 2 and len(res["steps"]) == 1
    step = res["steps"][0]
    assert step["accounting"]["all_accounted"], step["accounting"]
    stats = [json.loads(p.read_text())
             for p in (tmp_path / "sustained-2p-300").glob("part-*.json")]
    assert len({s["pid"] for s in stats}) == 2  # each process consumed its own partition
    assert sum(s["messages"] for s in stats) == step["accounting"]["expected"]
    for key in ("delay_ms", "after_window_end_ms", "complete_to_detected_ms", "consume_lag_ms"):
        assert key in step, key
    assert (tmp_path / "sustained-2p-300-threats.jsonl").exists()
    assert step["held"] == (not step["why_not"])
