"""The dashboard's HTTP server (standard library): the page, a JSON snapshot, and server-sent events.

`/` the self-contained page (no external resources: the operator's network may have no internet);
`/api/state` the snapshot as JSON; `/events` an event stream: `state` at once and every few seconds,
`threat` the moment a new threat arrives.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from twinguard.pipelines.dashboard.state import DashboardState

log = logging.getLogger(__name__)
STATE_EVERY_S = 2.0
# the page draws only through textContent; the policy also forbids anything from elsewhere
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'")


def page() -> bytes:
    return resources.files("twinguard.pipelines.dashboard").joinpath("page.html").read_bytes()


class DashboardServer(ThreadingHTTPServer):
    """One server, one state; every request handled in its own (daemon) thread."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: DashboardState) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.closing = threading.Event()
        self.page = page()

    def host_allowed(self, host_header: str) -> bool:
        """On loopback, only requests addressed to loopback: a web page elsewhere cannot read the
        fleet by pointing its own domain at 127.0.0.1 (DNS rebinding)."""
        host, port = str(self.server_address[0]), self.server_address[1]
        if not ipaddress.ip_address(host).is_loopback:
            return True  # exposed on purpose (--host): the operator's proxy decides
        return host_header in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def close(self) -> None:
        """Stop serving and end the open event streams."""
        self.closing.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if not self.server.host_allowed(self.headers.get("Host", "")):
            self._send(403, "text/plain; charset=utf-8", b"unexpected Host header: open the "
                       b"dashboard by the address it printed\n")
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", self.server.page)
        elif path == "/api/state":
            self._send(200, "application/json", json.dumps(self.server.state.snapshot()).encode())
        elif path == "/events":
            self._stream()
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /\n")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        """Server-sent events until the page goes away or the server closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        state = self.server.state
        q = state.subscribe()
        try:
            self._event("state", state.snapshot())
            while not self.server.closing.is_set():
                try:
                    self._event("threat", q.get(timeout=STATE_EVERY_S))
                except queue.Empty:
                    self._event("state", state.snapshot())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed
        finally:
            state.unsubscribe(q)

    def _event(self, name: str, data: Any) -> None:
        # json.dumps escapes newlines, so one event is one `data:` line
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("dashboard %s: " + format, self.address_string(), *args)


def serve(state: DashboardState, host: str = "127.0.0.1", port: int = 8765) -> DashboardServer:
    """Start serving in a background thread; `close()` stops it."""
    server = DashboardServer((host, port), state)
    threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True).start()
    return server
