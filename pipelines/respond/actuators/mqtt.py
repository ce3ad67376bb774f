"""Mosquitto dynamic-security actuator: quarantine disables the device's client (which also
disconnects it), release enables it. A credential lock rotates its password to an unrecorded secret
(the device is locked out); its release sets a fresh password kept for the operator (escrow.py says
why not the old one); a key rotation does both at once."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from twinguard.pipelines.respond.actuators.base import ActuatorError, Step
from twinguard.pipelines.respond.actuators.escrow import SecretEscrow

CTRL = "mosquitto_ctrl"
# answers that mean the broker could not be reached or did not answer: trying later may work
UNREACHABLE = ("connection refused", "connection error", "timed out", "timeout", "no route",
               "lookup error", "network is unreachable")


class MqttActuator:
    """Drives `mosquitto_ctrl dynsec`; admin credentials go in a private options file, never argv."""

    name = "mqtt"

    def __init__(self, settings: dict[str, str]) -> None:
        password = os.environ.get(settings.get("admin_password_env", ""), "")
        if not password:
            raise ValueError(f"[respond.mqtt] needs the broker admin password in the environment "
                             f"variable {settings.get('admin_password_env')!r} (it is empty)")
        self.timeout_s = float(settings.get("timeout_s", "5"))
        try:
            self._escrow = SecretEscrow(settings.get("secrets_dir", ""))
        except OSError as e:
            raise ValueError(f"[respond.mqtt] secrets_dir: {e}") from None
        self._home = tempfile.TemporaryDirectory(prefix="twinguard-mqtt-")
        opts = Path(self._home.name) / "mosquitto_ctrl"
        opts.touch(mode=0o600)
        opts.write_text(f"-h {settings.get('host', '127.0.0.1')}\n-p {settings.get('port', '1883')}\n"
                        f"-u {settings.get('admin_user', 'twinguard-admin')}\n-P {password}\n")

    def reverts(self, action: str) -> bool:
        return action in ("quarantine", "lock_credentials")

    def execute(self, step: Step) -> dict[str, str]:
        client = step.request.target
        if step.action == "quarantine":
            self._ctrl("disableClient", client)
            return {"mqtt_client": client, "effect": "client disabled and disconnected"}
        if step.action == "lock_credentials":
            self._ctrl("setClientPassword", client, secrets.token_hex(24))  # hex: never starts with "-"
            return {"mqtt_client": client, "effect": "password rotated to an unrecorded secret: "
                    "locked out until released (a fresh password then goes to the operator)"}
        if step.action == "rotate_key":
            return self._reissue(client, "password rotated")
        raise ActuatorError(f"mqtt cannot perform '{step.action}' (it does quarantine, "
                            "lock_credentials, rotate_key): fix [respond.routes]", retryable=False)

    def revert(self, step: Step) -> dict[str, str]:
        client = step.request.target
        if step.action == "lock_credentials":
            return self._reissue(client, "released with a new password (the locked one is "
                                 "presumed stolen)")
        if step.action != "quarantine":
            raise ActuatorError(f"mqtt cannot undo '{step.action}': a rotated password is not "
                                "restored, re-provision the device", retryable=False)
        self._ctrl("enableClient", client)
        return {"mqtt_client": client, "effect": "client enabled"}

    def _reissue(self, client: str, what: str) -> dict[str, str]:
        """A fresh password, kept for the operator first (a set password whose secret was lost
        would lock the device out for good), then set on the broker."""
        secret = secrets.token_hex(24)
        try:
            kept = self._escrow.put(client, secret)
        except OSError as e:
            raise ActuatorError(f"cannot keep the new password of {client} in "
                                f"{self._escrow.dir}: {e}", retryable=False) from None
        self._ctrl("setClientPassword", client, secret)
        return {"mqtt_client": client, **kept,
                "effect": f"{what}: the operator provisions the device from {kept['secret_file']}"}

    def _ctrl(self, *args: str) -> None:
        env = {**os.environ, "XDG_CONFIG_HOME": self._home.name, "HOME": self._home.name}
        try:
            done = subprocess.run([CTRL, "dynsec", *args], env=env, capture_output=True, text=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise ActuatorError(f"mosquitto_ctrl {args[0]} timed out after {self.timeout_s} s",
                                retryable=True) from None
        except FileNotFoundError:
            raise ActuatorError("mosquitto_ctrl is not installed (Debian package mosquitto-clients)",
                                retryable=False) from None
        lines = [ln.strip() for ln in (done.stdout + "\n" + done.stderr).splitlines()
                 if "error" in ln.lower() or "refused" in ln.lower()]
        if done.returncode == 0 and not lines:
            return
        text = "; ".join(lines) or f"exit status {done.returncode}"
        retryable = done.returncode != 0 and any(u in text.lower() for u in UNREACHABLE)
        raise ActuatorError(f"mosquitto_ctrl {args[0]} {args[1]}: {text}", retryable=retryable)

    def close(self) -> None:
        self._home.cleanup()
