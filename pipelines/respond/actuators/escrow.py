"""Where a released or rotated MQTT password goes: a directory only the operator account can read.

Why a new secret and not the old one back: Mosquitto's dynamic-security API sets a password only
from its plaintext (it never hands out the stored hash, nor takes one back), and twinguard must not
hold the fleet's device passwords in plaintext to be able to restore them. And a credential is
locked because it is believed stolen: restoring it would reopen what the lock closed. So a release
sets a fresh password and leaves it here for the operator who re-provisions the device; the result
record names the file and the secret's fingerprint, never the secret.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

SAFE_NAME = re.compile(r"^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,127}$")


def default_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "twinguard" / "mqtt-secrets"


class SecretEscrow:
    """One file per MQTT client, mode 0600 in a 0700 directory, replaced atomically."""

    def __init__(self, directory: str = "") -> None:
        self.dir = Path(directory).expanduser() if directory else default_dir()
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.dir.stat().st_mode)
        if mode & 0o077:
            raise ValueError(f"[respond.mqtt] secrets_dir {self.dir} is readable by others (mode "
                             f"{mode:o}): chmod 700 it, released device passwords are kept there")

    def path_for(self, client: str) -> Path:
        name = client if SAFE_NAME.match(client) else hashlib.sha256(client.encode()).hexdigest()
        return self.dir / f"{name}.secret"

    def put(self, client: str, secret: str) -> dict[str, str]:
        """Keep `client`'s new secret; what the result record may say about it."""
        path = self.path_for(client)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        os.replace(tmp, path)
        return {"secret_file": str(path),
                "secret_sha256": hashlib.sha256(secret.encode()).hexdigest()[:16]}
