"""A work folder for a long experiment (chaos, fuzz): removed when the experiment passes, kept and
logged when it fails or the user asked to keep it — the logs in it are how a failure is debugged."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def in_work_dir(name: str, keep_dir: Path | None, body: Callable[[Path], dict[str, Any]]
                ) -> dict[str, Any]:
    """`body(work)`'s report, with `timings.total_s` and `work_dir` added; `report["ok"]` decides
    whether the folder goes (a fresh temporary one only: `keep_dir` always stays)."""
    t0 = time.monotonic()
    work = Path(keep_dir or tempfile.mkdtemp(prefix=f"twinguard-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    ok = False
    try:
        report = body(work)
        report.setdefault("timings", {})["total_s"] = round(time.monotonic() - t0, 1)
        report["work_dir"] = str(work)
        ok = bool(report["ok"])
        return report
    finally:
        if ok and keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log.info("%s: logs kept in %s", name, work)
