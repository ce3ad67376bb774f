"""The real `twinguard` command in a child process, and a config file it reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twinguard.pipelines.config import Config


def write_config(cfg: Config, path: Path) -> Path:
    """A TOML config file with the broker, topic names and partition count of `cfg`."""
    topics = "\n".join(f'{role} = "{name}"' for role, name in cfg.topics.all().items())
    path.write_text(f'[kafka]\nbrokers = "{cfg.kafka.brokers}"\n[topics]\n{topics}\n'
                    f"partitions = {cfg.topics.partitions}\n")
    return path


def twinguard(*args: str) -> subprocess.CompletedProcess[str]:
    """`twinguard ARGS` run to the end (10 minutes at most), output captured, never raising."""
    return subprocess.run([sys.executable, "-m", "twinguard.pipelines.cli", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          check=False)
