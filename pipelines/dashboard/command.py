"""`twinguard dashboard`: serve the live page until Ctrl-C, from the topics or a demo's output folder."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from twinguard.pipelines.config import Config

if TYPE_CHECKING:
    from twinguard.pipelines.dashboard.state import DashboardState

DEFAULT_PORT = 8765


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: "
                   "this machine only; the page has no login, so expose it with care)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--from-dir", metavar="DIR", help="show a finished `twinguard demo --out DIR` "
                   "run instead of the live topics")


def serve_until_interrupted(state: DashboardState, host: str, port: int,
                            stop: threading.Event | None = None) -> int:
    """Serve `state` until Ctrl-C, saying where."""
    from twinguard.pipelines.dashboard.server import serve

    try:
        server = serve(state, host, port)
    except OSError as e:
        msg = f"cannot listen on {host}:{port} ({e.strerror}): pick another --port"
        raise RuntimeError(msg) from e
    print(f"dashboard on {server.url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if stop is not None:
            stop.set()
        server.close()
    return 0


def serve_demo(out_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """`twinguard demo --dashboard`: the demo's outputs on the same page."""
    from twinguard.pipelines.dashboard.feeds import load_demo
    from twinguard.pipelines.dashboard.state import DashboardState

    state = DashboardState(f"demo run in {out_dir}")
    load_demo(out_dir, state)
    return serve_until_interrupted(state, host, port)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.dashboard.feeds import follow_kafka
    from twinguard.pipelines.dashboard.state import DashboardState

    if args.from_dir:
        return serve_demo(Path(args.from_dir), args.host, args.port)
    state = DashboardState(f"{cfg.kafka.brokers} ({cfg.topics.threats}, {cfg.topics.twins})")
    stop = threading.Event()
    follow_kafka(cfg, state, stop)
    return serve_until_interrupted(state, args.host, args.port, stop)
