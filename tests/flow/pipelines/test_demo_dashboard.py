"""`twinguard demo --dashboard`: the real command runs the demo, then serves its outputs on the
dashboard until stopped: every device and every (unique) threat of the run is on it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

from twinguard.pipelines.kafka.local import free_port


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    """The child's output lines, read in a thread so the test can wait on them with a deadline."""
    for line in stream:
        into.put(line)


def test_demo_then_dashboard_serves_the_runs_outputs(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinguard.pipelines.cli", "demo", "--devices", "20", "--duration",
         "15", "--out", str(out), "--dashboard", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        deadline, url = time.monotonic() + 300, ""
        while not url and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("dashboard on "):
                url = line.split()[2]
        assert url == f"http://127.0.0.1:{port}/", "the demo never said where its dashboard is"
        with urllib.request.urlopen(url + "api/state", timeout=10) as r:  # noqa: S310 - http
            state = json.load(r)
    finally:
        proc.terminate()
        proc.wait(30)
    threat_ids = {json.loads(line)["id"] for line in (out / "threats.jsonl").read_text().splitlines()}
    assert state["devices"] == 20 and sum(sum(v.values()) for v in state["fleet"].values()) == 20
    assert threat_ids and {t["id"] for t in state["threats"]} == threat_ids
    assert state["source"] == f"demo run in {out}"
