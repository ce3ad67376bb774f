"""A real Mosquitto broker with the dynamic-security plugin, and a device that publishes through it."""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
ADMIN = "twinguard-admin"


@dataclass(frozen=True)
class Mosquitto:
    host: str
    port: int
    admin_password: str
    home: Path  # holds the admin's mosquitto_ctrl options file (never put passwords in argv)

    def ctrl(self, *args: str) -> str:
        """Run `mosquitto_ctrl dynsec ARGS` as the admin; fails the test on any error."""
        done = subprocess.run(["mosquitto_ctrl", "dynsec", *args], capture_output=True, text=True,
                              env={**os.environ, "XDG_CONFIG_HOME": str(self.home)}, timeout=10,
                              check=False)
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "error" not in out.lower(), out
        return out

    def add_device(self, device_id: str, password: str) -> None:
        """A device client whose role may publish only its own telemetry topic."""
        self.ctrl("createClient", device_id, "-p", password)
        self.ctrl("createRole", f"device-{device_id}")
        self.ctrl("addRoleACL", f"device-{device_id}", "publishClientSend", f"telemetry/{device_id}",
                  "allow")
        self.ctrl("addClientRole", device_id, f"device-{device_id}")

    def publish(self, device_id: str, password: str, payload: str) -> bool:
        """One telemetry message from the device (QoS 1); True when the broker accepted it."""
        pw = self.home / f"{device_id}.conf"
        pw.write_text(f"-u {device_id}\n-P {password}\n")
        done = subprocess.run(["mosquitto_pub", "-h", self.host, "-p", str(self.port), "-q", "1",
                               "-i", device_id, "-t", f"telemetry/{device_id}", "-m", payload],
                              capture_output=True, text=True, timeout=10, check=False,
                              env={**os.environ, "XDG_CONFIG_HOME": str(self._client_home(device_id))})
        return done.returncode == 0

    def _client_home(self, device_id: str) -> Path:
        home = self.home / "clients" / device_id
        home.mkdir(parents=True, exist_ok=True)
        (home / "mosquitto_pub").write_text(
            (self.home / f"{device_id}.conf").read_text())
        return home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"mosquitto not listening on {port} after {timeout_s} s: {log.read_text()}")


@contextmanager
def running_mosquitto(work: Path) -> Iterator[Mosquitto]:
    """Start Mosquitto on a free port with dynamic security and an admin client; stop it after."""
    if shutil.which("mosquitto") is None or not Path(PLUGIN).exists():
        raise RuntimeError("Mosquitto with its dynamic-security plugin is missing: run `make install` "
                           "(deploy/system-packages.sh installs mosquitto and mosquitto-clients)")
    work.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(16)  # hex: never starts with "-", which option parsers would take for a flag
    dynsec = work / "dynamic-security.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(dynsec), ADMIN, password],
                   capture_output=True, check=True, timeout=10)
    port = _free_port()
    conf = work / "mosquitto.conf"
    # started as root, mosquitto would switch to the `mosquitto` user, who cannot read a private tmp dir
    conf.write_text(f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
                    "persistence false\n"
                    f"plugin {PLUGIN}\nplugin_opt_config_file {dynsec}\n")
    home = work / "home"
    home.mkdir(exist_ok=True)
    (home / "mosquitto_ctrl").write_text(f"-h 127.0.0.1\n-p {port}\n-u {ADMIN}\n-P {password}\n")
    log = work / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield Mosquitto("127.0.0.1", port, password, home)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
