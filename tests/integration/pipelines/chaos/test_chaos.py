"""Chaos on a real broker: SIGKILLed and restarted dataflow runs plus a broker outage lose nothing.

The outage needs a broker the test may stop, so `run_chaos` starts its own private broker (own data
and state dirs) instead of using the shared session fixture. One chaos run (~1.5 min) feeds every
test in this module.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from twinguard.pipelines.chaos import ChaosConfig, format_table, run_chaos, write_report
from twinguard.pipelines.config import Config


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, config: Config) -> dict[str, Any]:
    """3 kills and a 5 s broker outage over ~30k live telemetry messages on 2 partitions."""
    work = tmp_path_factory.mktemp("chaos")
    cc = ChaosConfig(kills=3, outage_s=5, events=30_000, duration_s=45, seed=11,
                     keep_dir=work / "logs")
    result = run_chaos(config, cc)
    write_report(result, work / "chaos.json")
    print(format_table(result))
    return result


def test_kills_and_a_broker_outage_lose_nothing(report: dict[str, Any]) -> None:
    summary = format_table(report)
    assert report["kills"] == 3, summary
    assert report["outage"] is not None and report["outage"]["run_exit_code"] == 0, summary
    assert not report["failures"], "\n".join(report["failures"])
    # every input message is processed exactly once (twin versions) or dead-lettered
    assert report["events_in"] == report["events_produced"] > 25_000
    assert report["lost"] == 0, summary
    assert report["dead_lettered"] == report["dead_lettered_reference"] > 0
    assert report["ok"], summary


def test_re_emitted_threats_keep_their_ids(report: dict[str, Any]) -> None:
    assert report["duplicates_with_same_id"] == report["duplicates"], format_table(report)
    assert report["ids_with_conflicting_content"] == []
    assert report["realerts_within_cooldown"] == []


@pytest.mark.xfail(
    strict=False,
    reason="not yet guaranteed: peer baselines learn in window-close order, which a restart can "
    "change, and an --until-idle stop flushes partial windows that the next run re-decides; "
    "either can move a detection to another window (new id). Stalls no longer count as idle "
    "input. The report classifies each difference (threats_moved, reference_order_sensitive).")
def test_distinct_threats_match_an_undisturbed_run(report: dict[str, Any]) -> None:
    assert report["reference_comparable"], report["warnings"]
    assert report["threats_reference"] > 0
    diffs = json.dumps(report["detection_differences"], indent=1)
    assert report["threats_missing_vs_reference"] == [], diffs
    assert report["threats_extra_vs_reference"] == [], diffs
