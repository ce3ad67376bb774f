"""Clean failures at start-up (issue 16, item 4): unreachable brokers give one line and a non-zero
exit after [startup] broker_timeout_s, with no raw librdkafka lines; a missing topic names the
command that creates it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import twinguard, write_config
from twinguard.pipelines.config import Config

RAW_LIBRDKAFKA = ("%3|", "%4|", "%6|", "%7|", "rdkafka#")


def non_log_lines(stderr: str) -> list[str]:
    """stderr without the timestamped log lines of Python logging (what a user reads as output)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln[:4].isdigit()]


def test_unreachable_brokers_fail_in_one_line(tmp_path: Path) -> None:
    config_file = tmp_path / "twinguard.toml"
    config_file.write_text("[startup]\nbroker_timeout_s = 2\n")
    res = twinguard("--config", str(config_file), "run", "--brokers", "127.0.0.1:1",
                    "--until-idle", "3", "--insecure-dev-key")
    assert res.returncode == 2, res.stderr
    lines = non_log_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("twinguard run: error: Kafka at 127.0.0.1:1 did not answer "
                               "within 2 s ([startup] broker_timeout_s)"), lines
    assert "twinguard kafka up" in lines[0] and "[kafka] brokers" in lines[0]
    assert not any(raw in res.stderr + res.stdout for raw in RAW_LIBRDKAFKA), res.stderr


def test_a_missing_topic_names_the_command_that_creates_it(kafka_brokers: str, config: Config,
                                                           tmp_path: Path) -> None:
    cfg = config.replace(kafka={"brokers": kafka_brokers},
                         topics={"telemetry": "twinguard.never-created.telemetry",
                                 "activity": "twinguard.never-created.activity",
                                 "action_results": "twinguard.never-created.action_results"})
    config_file = write_config(cfg, tmp_path / "twinguard.toml")
    res = twinguard("--config", str(config_file), "run", "--until-idle", "3",
                    "--insecure-dev-key")
    assert res.returncode == 2, res.stderr
    lines = non_log_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    # every input it reads is named: telemetry, activity, and the action results the twins follow
    for role in ("telemetry", "activity", "action_results"):
        assert f"'twinguard.never-created.{role}'" in lines[0], lines
    assert "`twinguard topics create`" in lines[0], lines
    assert not any(raw in res.stderr for raw in RAW_LIBRDKAFKA), res.stderr


def test_bytewax_run_fails_on_unreachable_brokers_with_the_same_line() -> None:
    env = {**os.environ, "TWINGUARD__KAFKA__BROKERS": "127.0.0.1:1",
           "TWINGUARD__STARTUP__BROKER_TIMEOUT_S": "2",
           "TWINGUARD__INTEGRITY__INSECURE_DEV_KEY": "true"}
    res = subprocess.run([sys.executable, "-m", "bytewax.run",
                          "twinguard.pipelines.flow:build_flow()"], capture_output=True, text=True,
                         env=env, timeout=120, check=False)
    assert res.returncode != 0, res.stderr
    assert ("Kafka at 127.0.0.1:1 did not answer within 2 s ([startup] broker_timeout_s)"
            in res.stderr), res.stderr[-2000:]
    assert not any(raw in res.stderr for raw in RAW_LIBRDKAFKA), res.stderr[-2000:]
