"""The metrics endpoint of a dataflow process, and the info metrics it always carries."""

from __future__ import annotations

import logging
import os
import platform
import threading
from importlib import metadata

from prometheus_client import start_http_server

from twinguard.operators.detect.scoring import Scorer
from twinguard.pipelines.metrics import instruments as m
from twinguard.pipelines.metrics.settings import MetricsConfig

log = logging.getLogger(__name__)
BYTEWAX_API = "BYTEWAX_DATAFLOW_API_ENABLED"  # Bytewax then serves the same registry on /metrics
_lock = threading.Lock()
_started: list[str] = []  # the endpoint of this process, once started


def describe_process(scorer: Scorer) -> None:
    """Set the build and model info metrics (versions, the model file's sha256)."""
    m.BUILD.info({"version": _version("twinguard"), "bytewax": _version("bytewax"),
                  "python": platform.python_version()})
    sha = str(scorer.metadata.get("sha256", "")) if scorer.metadata else ""
    m.MODEL.info({"version": scorer.version, "sha256": sha})


def serve(cfg: MetricsConfig, scorer: Scorer) -> str | None:
    """Start this process's endpoint once; its URL, or None when off or served by Bytewax.

    A port in use is logged, not fatal: metrics must never stop the dataflow."""
    describe_process(scorer)
    if os.environ.get(BYTEWAX_API):
        log.info("metrics: served by Bytewax's dataflow API on /metrics (port $%s, default "
                 "3030)", "BYTEWAX_DATAFLOW_API_PORT")
        return None
    if not cfg.enabled or cfg.port == 0:
        return None
    port = cfg.port + int(os.environ.get("BYTEWAX_PROCESS_ID") or 0)
    with _lock:
        if _started:
            return _started[0]
        try:
            start_http_server(port, addr=cfg.host)
        except OSError as e:
            log.warning("metrics: cannot listen on %s:%d (%s); set [metrics] port (0 = off)",
                        cfg.host, port, e.strerror or e)
            return None
        url = f"http://{cfg.host}:{port}/metrics"
        _started.append(url)
    log.info("metrics: %s", url)
    return url


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
