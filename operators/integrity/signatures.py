"""Device message authentication: per-device HMAC keys and signature checks.

Keys come from a key file ({"device_id": "hex key"}) or derive from a fleet master secret read from the
environment (HMAC-SHA256(master, device_id)); never from telemetry itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from twinguard.operators.integrity import native_hmac

if TYPE_CHECKING:
    from _hashlib import HASH

log = logging.getLogger(__name__)

# Used only when no key file and no master secret is configured (demo, tests); logged loudly.
DEV_MASTER = b"twinguard-development-master-key"

SIG_OK, SIG_MISSING, SIG_BAD = 0, 1, 2
PAD_CACHE_DEVICES = 1 << 16  # ~0.5 KB of hash state per cached device
STATE_CACHE_DEVICES = 1 << 16  # 256 bytes of native hash state per cached device
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class KeyRingError(ValueError):
    """The key file is unreadable or malformed."""


class KeyRing:
    """Looks up a device's HMAC key; caches derived keys."""

    def __init__(self, master: bytes, keys: dict[str, bytes] | None = None) -> None:
        self._master = master
        self._keys = dict(keys or {})
        self._pads: dict[str, tuple[HASH, HASH]] = {}
        self._state_rows: dict[str, int] = {}
        self._states = np.zeros((64, 2, native_hmac.CTX_BYTES), dtype=np.uint8)
        self._lock = threading.Lock()  # shared by the worker threads of a process

    @classmethod
    def from_config(cls, key_file: str, master_key_env: str, *, allow_dev_key: bool) -> KeyRing:
        """Key file if given, else the master secret in $master_key_env, else the development key
        (published in this source, so anyone can sign with it): warned if `allow_dev_key`, else
        refused with a KeyRingError that says how to configure keys."""
        keys: dict[str, bytes] = {}
        if key_file:
            try:
                raw = json.loads(Path(key_file).read_text())
                keys = {str(d): bytes.fromhex(k) for d, k in raw.items()}
            except (OSError, ValueError, AttributeError) as e:
                raise KeyRingError(f"HMAC key file {key_file}: {e}; expected JSON "
                                   '{"device_id": "hex key", ...}') from None
        secret = os.environ.get(master_key_env, "")
        if not secret and not keys and not allow_dev_key:
            raise KeyRingError(
                f"no HMAC keys configured: set integrity.key_file (JSON {{\"device_id\": \"hex "
                f"key\"}}) or the fleet master secret in ${master_key_env}; only for demos and "
                "tests, --insecure-dev-key accepts messages signed with the public development key")
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

    def block_key(self, device_id: str) -> bytes:
        """The device key as HMAC's 64-byte block (hashed if longer, zero-padded; RFC 2104)."""
        k = self.key(device_id)
        return (hashlib.sha256(k).digest() if len(k) > 64 else k).ljust(64, b"\0")

    def pads(self, device_id: str) -> tuple[HASH, HASH]:
        """SHA-256 states after the device key's HMAC inner/outer blocks (RFC 2104): copying them
        per message skips the key setup `hmac.digest` repeats each call. Cached per device, bounded
        (oldest evicted first)."""
        p = self._pads.get(device_id)
        if p is None:
            k = self.block_key(device_id)
            p = hashlib.sha256(k.translate(_IPAD)), hashlib.sha256(k.translate(_OPAD))
            if len(self._pads) >= PAD_CACHE_DEVICES:
                del self._pads[next(iter(self._pads))]
            self._pads[device_id] = p
        return p

    def pads_for(self, device_ids: list[str]) -> list[tuple[HASH, HASH]]:
        """`pads` of each id (one dict lookup per cached id)."""
        get = self._pads.get
        return [get(d) or self.pads(d) for d in device_ids]

    def hmac_states(self, device_ids: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """(row of each id, table) of `native_hmac.key_states`, computed once per device. Bounded:
        a full table starts over in a new array. A table's filled rows are never rewritten (growing
        copies), so a caller's (rows, table) stays valid while other threads add devices."""
        with self._lock:
            rows = self._state_rows
            at = np.fromiter(map(rows.get, device_ids, repeat(-1)), np.int64, len(device_ids))
            if (at < 0).any():
                self._add_states(device_ids)
                at = np.fromiter(map(rows.__getitem__, device_ids), np.int64, len(device_ids))
            return at, self._states

    def _add_states(self, device_ids: list[str]) -> None:
        """Table rows for the ids not in it (all of them after a start-over)."""
        rows = self._state_rows
        if len(rows) >= STATE_CACHE_DEVICES:
            rows.clear()
            self._states = np.zeros_like(self._states[:64])
        new = [d for d in dict.fromkeys(device_ids) if d not in rows]
        n = len(rows)
        if n + len(new) > self._states.shape[0]:
            cap = max(n + len(new), min(2 * n, STATE_CACHE_DEVICES))
            grown = np.zeros((cap, *self._states.shape[1:]), dtype=np.uint8)
            grown[:n] = self._states[:n]
            self._states = grown
        keys = np.frombuffer(b"".join(map(self.block_key, new)), dtype=np.uint8).reshape(-1, 64)
        self._states[n:n + len(new)] = native_hmac.key_states(keys)
        rows.update(zip(new, range(n, n + len(new)), strict=True))

    def sign(self, device_id: str, payload: bytes) -> str:
        return hmac.digest(self.key(device_id), payload, "sha256").hex()

    def check(self, device_id: str, payload: bytes, sig: str | None) -> int:
        """SIG_OK, SIG_MISSING or SIG_BAD for a canonical payload and its claimed signature."""
        if not sig:
            return SIG_MISSING
        if not sig.isascii():  # compare_digest raises on non-ASCII str: a forged sig, not a crash
            return SIG_BAD
        ok = hmac.compare_digest(self.sign(device_id, payload), sig)
        return SIG_OK if ok else SIG_BAD


def authentic(sig_state: npt.NDArray[np.int64], require_signature: bool) -> npt.NDArray[np.bool_]:
    """Per message: is it the device speaking? Signed and verified, or unsigned where signatures
    are not required. Only these may change who a twin says its device is (firmware, address)."""
    ok: npt.NDArray[np.bool_] = sig_state == SIG_OK
    return ok | (sig_state == SIG_MISSING) if not require_signature else ok
