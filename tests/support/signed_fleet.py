"""Made telemetry for the hostile-input tests: a small signed fleet under a test master key, the
hostile messages to mix in, and `twinguard run` on a real broker with that key configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from tests.support.cli import write_config
from tests.support.kafka import Doc, read_outputs
from twinguard.operators.integrity.signatures import KeyRing
from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.pipelines.config import Config
from twinguard.schemas.messages import Telemetry, canonical_bytes

MASTER = "hostile-c-test-master"
KEYS = KeyRing(MASTER.encode())
BROKER = "10.0.0.10"
SIGNALS = {"temperature_c": 21.0, "setpoint_c": 21.0, "humidity_pct": 45.0, "heating": 0.0}
START_MS = (int(time.time()) - 600) * 1000  # event time of the fleet's first report


def home(i: int) -> str:
    return f"10.16.0.{i + 2}"


def report(device: int, t_s: float, seq: int, sign: str = "good", **over: Any) -> tuple[bytes, bytes]:
    """(key, value) of thermostat `device`'s report at t_s seconds; sign = good, bad or none.
    Keys of `over` land in `net` (src_ip, dst_ip, dst_port, bytes_out) or at the top level."""
    dev = f"thermostat-{device:06d}"
    doc: dict[str, Any] = {"device_id": dev, "type": "thermostat", "ts": START_MS + int(t_s * 1000),
                           "seq": seq, "signals": dict(SIGNALS), "fw": "4.2.0",
                           "net": {"src_ip": home(device), "dst_ip": BROKER, "dst_port": 8883,
                                   "bytes_out": 220, "bytes_in": 90, "connections": 1}}
    for k, v in over.items():
        (doc["net"] if k in ("src_ip", "dst_ip", "dst_port", "bytes_out") else doc)[k] = v
    if sign != "none":
        try:
            payload = canonical_bytes(msgspec.convert(doc, Telemetry))
        except msgspec.ValidationError:  # out of contract: signed as sent, it is rejected anyway
            payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        doc["sig"] = KEYS.sign(dev, payload) if sign == "good" else "0" * 64
    return dev.encode(), json.dumps(doc).encode()


def fleet(devices: int, seconds: int) -> list[tuple[bytes, bytes]]:
    """Signed 1 Hz reports of `devices` thermostats for `seconds`, in time order."""
    return [report(d, t, t) for t in range(seconds) for d in range(devices)]


def produce(cfg: Config, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, topic, items, errors.append)
    assert p.flush(60) == 0 and not errors, errors


def twinguard(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process with the test master key (no development key)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TWINGUARD_HMAC_MASTER": MASTER}
    return subprocess.run([sys.executable, "-m", "twinguard.pipelines.cli", *args],
                          capture_output=True, text=True, timeout=600, env=env, check=False)


def run(cfg: Config, tmp_path: Path, extra_toml: str = ""
        ) -> tuple[list[Doc], list[Doc], dict[str, Doc], Path]:
    """`twinguard run --until-idle` over the topics; its threats, dead letters, twins and config."""
    config = write_config(cfg, tmp_path / "twinguard.toml")
    config.write_text(config.read_text() + extra_toml)
    result = twinguard("--config", str(config), "run", "--until-idle", "6")
    assert result.returncode == 0, result.stderr[-3000:]
    threats, dead, twins = read_outputs(cfg)
    return threats, dead, twins, config


def actions(cfg: Config) -> list[Doc]:
    return [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.actions)]


def processed(twins: dict[str, Doc]) -> int:
    return sum(int(str(t["version"])) for t in twins.values())
