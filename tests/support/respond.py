"""Actions, twins and decisions for the respond service's topics, and reading its results back."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import msgspec

from tests.support.cli import write_config
from tests.support.kafka import produce
from twinguard.operators.detect.policy import output_id
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.schemas.messages import Action, ActionResult, Command, TwinState

T = TypeVar("T")


def action(device_id: str, name: str, tier: str = "auto", target: str | None = None,
           salt: str = "") -> Action:
    """An action as the dataflow issues it (not a dry run), with a deterministic id."""
    threat_id = output_id(device_id, name, salt)
    return Action(id=output_id(threat_id, name), threat_id=threat_id, device_id=device_id,
                  action=name, target=target or device_id, tier=tier, dry_run=False,
                  reason="test", issued_at=int(time.time() * 1000))


def twin(device_id: str, device_type: str) -> TwinState:
    now = int(time.time() * 1000)
    return TwinState(device_id=device_id, device_type=device_type, version=1, last_seen=now, seq=1,
                     fw=None, src_ip=None, reported={}, status="normal", threats_total=0,
                     last_threat=None, baseline_windows=3, updated_at=now)


def publish_twins(cfg: Config, devices: dict[str, str]) -> None:
    produce(cfg, cfg.topics.twins, [(d.encode(), msgspec.json.encode(twin(d, t)))
                                    for d, t in devices.items()])


def publish_actions(cfg: Config, actions: list[Action]) -> None:
    produce(cfg, cfg.topics.actions, [(a.device_id.encode(), msgspec.json.encode(a))
                                      for a in actions])


def results(cfg: Config) -> dict[str, ActionResult]:
    """The latest result per action id."""
    dec = msgspec.json.Decoder(ActionResult)
    out: dict[str, ActionResult] = {}
    for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.action_results):
        r = dec.decode(v)
        out[r.action_id] = r
    return out


def history(cfg: Config, action_id: str) -> list[ActionResult]:
    dec = msgspec.json.Decoder(ActionResult)
    recs = [dec.decode(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.action_results)]
    return [r for r in recs if r.action_id == action_id]


def commands(cfg: Config) -> list[Command]:
    dec = msgspec.json.Decoder(Command)
    return [dec.decode(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.commands)]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


@contextmanager
def responding(cfg: Config) -> Iterator[threading.Thread]:
    """`twinguard respond` (the service loop) in a thread, stopped on exit."""
    from twinguard.pipelines.respond.service import serve

    stop = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            serve(cfg, stop)
        except BaseException as e:  # reported by the test thread below
            failure.append(e)
    t = threading.Thread(target=main, name="respond", daemon=True)
    t.start()
    try:
        yield t
    finally:
        stop.set()
        t.join(60)
        if failure:  # the service's own error explains a test that timed out waiting for it
            raise AssertionError(f"respond failed: {failure[0]!r}") from failure[0]


# executing, no blast-radius limit, containments that outlive the test; tests add their own lines
SITE = """
[response]
dry_run = false
[respond]
group_id = "{group}"
guard_max_devices = 100000
guard_max_type_share = 1.0
ttl_s = 3600.0
"""


def site_config(cfg: Config, path: Path, group: str, extra: str) -> Path:
    """A config file for a `twinguard respond` process: `cfg`'s topics, SITE, then `extra`."""
    write_config(cfg, path)
    path.write_text(path.read_text() + SITE.format(group=group) + extra)
    return path


def respond_process(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    """`twinguard respond` as its own process (to be killed with -9), output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(conf),
                                 "respond"], stdout=out, stderr=subprocess.STDOUT)
