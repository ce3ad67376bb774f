"""Device message authentication: per-device HMAC keys and signature checks.

Keys come from a key file ({"device_id": "hex key"}) or derive from a fleet master secret read from the
environment (HMAC-SHA256(master, device_id)); never from telemetry itself.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# Used only when no key file and no master secret is configured (demo, tests); logged loudly.
DEV_MASTER = b"twinguard-development-master-key"

SIG_OK, SIG_MISSING, SIG_BAD = 0, 1, 2


class KeyRingError(ValueError):
    """The key file is unreadable or malformed."""


class KeyRing:
    """Looks up a device's HMAC key; caches derived keys."""

    def __init__(self, master: bytes, keys: dict[str, bytes] | None = None) -> None:
        self._master = master
        self._keys = dict(keys or {})

    @classmethod
    def from_config(cls, key_file: str, master_key_env: str) -> KeyRing:
        """Key file if given, else the master secret in $master_key_env, else the dev key (warned)."""
        keys: dict[str, bytes] = {}
        if key_file:
            try:
                raw = json.loads(Path(key_file).read_text())
                keys = {str(d): bytes.fromhex(k) for d, k in raw.items()}
            except (OSError, ValueError, AttributeError) as e:
                raise KeyRingError(f"HMAC key file {key_file}: {e}; expected JSON "
                                   '{"device_id": "hex key", ...}') from None
        secret = os.environ.get(master_key_env, "")
        if not secret and not keys:
            log.warning("no HMAC key file and $%s unset: using the development master key; "
                        "set one before production use", master_key_env)
        return cls(secret.encode() if secret else DEV_MASTER, keys)

    def key(self, device_id: str) -> bytes:
        k = self._keys.get(device_id)
        if k is None:
            k = hmac.digest(self._master, device_id.encode(), "sha256")
            self._keys[device_id] = k
        return k

    def sign(self, device_id: str, payload: bytes) -> str:
        return hmac.digest(self.key(device_id), payload, "sha256").hex()

    def check(self, device_id: str, payload: bytes, sig: str | None) -> int:
        """SIG_OK, SIG_MISSING or SIG_BAD for a canonical payload and its claimed signature."""
        if not sig:
            return SIG_MISSING
        ok = hmac.compare_digest(self.sign(device_id, payload), sig)
        return SIG_OK if ok else SIG_BAD
