"""Real broker: `twinguard run` needs the feedback and models topics it follows, and says so in one
line naming them and `twinguard topics create`; with their readers switched off it runs without."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import twinguard, write_config
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka import admin as kafka_admin


def test_run_names_missing_adaptive_topics(unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    kafka_admin.delete_topics(cfg.kafka.client_settings(), [cfg.topics.feedback, cfg.topics.models])
    config = write_config(cfg, tmp_path / "twinguard.toml")
    out = twinguard("--config", str(config), "run", "--until-idle", "2", "--insecure-dev-key")
    assert out.returncode == 2
    error = out.stderr.strip().splitlines()[-1]
    assert f"topic '{cfg.topics.feedback}', '{cfg.topics.models}' not found" in error
    assert "`twinguard topics create`" in error

    off = config.read_text() + "[feedback]\nread_topic = false\n[models]\nread_topic = false\n"
    config.write_text(off)
    out = twinguard("--config", str(config), "run", "--until-idle", "2", "--insecure-dev-key")
    assert out.returncode == 0, out.stderr[-2000:]
