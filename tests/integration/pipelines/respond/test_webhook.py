"""The webhook actuator against a real HTTP server: signed bodies, retries on 503, then success."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.respond import action, history, publish_actions, publish_twins, responding, wait_for
from twinguard.pipelines.config import Config

SECRET_ENV, SECRET = "TWINGUARD_TEST_WEBHOOK_SECRET", "s3cret-for-tests"


class Receiver(ThreadingHTTPServer):
    """Answers 503 to the first `fail_first` posts, then 200; keeps what it was sent."""

    def __init__(self, fail_first: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fail_first = fail_first
        self.posts: list[tuple[str, bytes, bool]] = []  # signature header, body, signature valid


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        sig = self.headers.get("X-Twinguard-Signature", "")
        self.server.posts.append((sig, body, hmac.compare_digest(sig, want)))
        self.send_response(503 if len(self.server.posts) <= self.server.fail_first else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver(fail_first=2)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_signed_post_is_retried_until_accepted(executing: Config, receiver: Receiver,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/soar"
    cfg = executing.replace(respond={"webhook": {"url": url, "secret_env": SECRET_ENV,
                                                 "timeout_s": "5"}})
    publish_twins(cfg, {"ip_camera-000003": "ip_camera"})
    act = action("ip_camera-000003", "investigate")
    with responding(cfg):
        publish_actions(cfg, [act])
        steps = wait_for("the webhook to accept",
                         lambda: (h := history(cfg, act.id)) and h[-1].status == "succeeded" and h)
    assert len(receiver.posts) == 3 and all(ok for _, _, ok in receiver.posts)  # signed, every try
    assert "HTTP 503" in (steps[-2].error or "") and steps[-1].attempts == 3
    sent = json.loads(receiver.posts[-1][1])
    assert (sent["step"], sent["action"], sent["request"]["id"]) == ("execute", "investigate", act.id)
    assert steps[-1].detail == {"webhook_status": "200"} and steps[-1].expires_at is None
