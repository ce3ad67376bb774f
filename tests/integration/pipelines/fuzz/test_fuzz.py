"""`twinguard fuzz` at a small size on a real broker: no crash, nothing lost, every dead letter with a
reason — for every kind of hostile input of issue 18 (the suite `make test` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twinguard.pipelines.config import Config
from twinguard.pipelines.fuzz import FuzzConfig, format_table, run_fuzz


def test_hostile_input_never_stops_the_pipeline(kafka_brokers: str, unique_topics: Config,
                                               tmp_path: Path) -> None:
    cfg = unique_topics  # the suite makes its own topics; this gives the broker and defaults
    report = run_fuzz(cfg, FuzzConfig(size=200, seed=11, max_restarts=1, until_idle_s=2.0,
                                      keep_dir=tmp_path / "fuzz"))
    table = format_table(report)
    assert not report["failed_kinds"], table  # every item of issue 18 is fixed: judged strictly
    kinds = report["kinds"]
    assert kinds["brake_flood"]["dead_letter_reasons"].get("quarantined", 0) >= 5_000, table
    assert kinds["base"]["processed"] == kinds["base"]["produced"] > 0, table
    assert report["inputs_tried"] >= 6_500 and report["peak_rss_mb"], table
    assert report["ok"] and report["crashes"] == 0 and report["lost"] == 0, table


def test_the_command_reports_and_exits_non_zero_on_failure(kafka_brokers: str,
                                                          tmp_path: Path) -> None:
    """The CLI end: --help, a table, the JSON report; exit 1 exactly when the report failed."""
    help_ = subprocess.run([sys.executable, "-m", "twinguard.pipelines.cli", "fuzz", "--help"],
                           capture_output=True, text=True, check=False)
    assert help_.returncode == 0 and "--size" in help_.stdout
    out = tmp_path / "fuzz.json"
    done = subprocess.run([sys.executable, "-m", "twinguard.pipelines.cli", "fuzz", "--brokers",
                           kafka_brokers, "--size", "10", "--mode", "mixed", "--restarts", "0",
                           "--out", str(out)], capture_output=True, text=True, check=False,
                          timeout=600)
    assert out.exists(), done.stderr[-2000:]
    assert "inputs tried:" in done.stdout and "result:" in done.stdout
    passed = '"ok": true' in out.read_text()
    assert done.returncode == (0 if passed else 1), done.stdout[-2000:] + done.stderr[-2000:]
