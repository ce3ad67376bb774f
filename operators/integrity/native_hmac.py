"""HMAC-SHA256 (RFC 2104) of a whole batch in one native loop: OpenSSL's SHA-256, the library Python's
`hashlib` uses (SHA-NI where the CPU has it), called from Numba with no Python call per message.

Each device key's HMAC inner and outer pad block is hashed once (`key_states`); per message the loop
copies the two states and hashes the payload and the inner digest. Checking message by message from
Python costs ~6 calls each (copy, update, digest, twice), more than the hashing itself.

`AVAILABLE` is False when this interpreter's OpenSSL does not export the SHA256_* functions (e.g. a
statically linked build) or the JIT is off; callers then use `hashlib`. Verified against `hmac` by
tests/unit/test_native_hmac.py.
"""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt
from llvmlite import binding
from numba import config, njit, types

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
# bytes reserved per SHA256_CTX: OpenSSL 1.1 and 3.x define it as 28 32-bit words (112 bytes)
CTX_BYTES = 128
_FUNCTIONS = ("SHA256_Init", "SHA256_Update", "SHA256_Final")


def _bind() -> bool:
    """Make OpenSSL's SHA256_* resolvable by name for Numba (also from its on-disk cache)."""
    try:
        import _hashlib  # linked against the same libcrypto `hashlib` uses

        lib = ctypes.CDLL(_hashlib.__file__)  # symbol lookup also searches its dependencies
        addresses = {n: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for n in _FUNCTIONS}
    except (ImportError, OSError, AttributeError):
        return False
    for name, address in addresses.items():
        binding.add_symbol(name, address)
    return True


AVAILABLE = _bind() and not config.DISABLE_JIT  # interpreted, the C functions cannot be called
_init = types.ExternalFunction("SHA256_Init", types.intc(types.voidptr))
_update = types.ExternalFunction("SHA256_Update", types.intc(types.voidptr, types.voidptr, types.uintp))
_final = types.ExternalFunction("SHA256_Final", types.intc(types.voidptr, types.voidptr))


@njit(nogil=True, cache=True)
def key_states(keys: U8) -> U8:
    """[D, 2, CTX_BYTES] SHA-256 states after each key's inner (0x36) and outer (0x5c) pad block;
    keys is [D, 64], each key already hashed if longer than 64 bytes and zero-padded (RFC 2104)."""
    out = np.zeros((keys.shape[0], 2, CTX_BYTES), dtype=np.uint8)
    block = np.empty(64, dtype=np.uint8)
    for d in range(keys.shape[0]):
        for side in range(2):
            pad = 0x36 if side == 0 else 0x5C
            for j in range(64):
                block[j] = keys[d, j] ^ pad
            ctx = out[d, side]
            _init(ctx.ctypes)
            _update(ctx.ctypes, block.ctypes, 64)
    return out


@njit(nogil=True, cache=True)
def hmac_batch(buf: U8, spans: I64, key_of: I64, states: U8) -> U8:
    """[n, 32] HMAC-SHA256 of message j = buf[a:b] + buf[c:d], (a, b, c, d) = spans[j] (a signed
    message minus its signature member, without copying), under the key whose `key_states` row is
    key_of[j]."""
    n = spans.shape[0]
    out = np.empty((n, 32), dtype=np.uint8)
    ctx = np.empty(CTX_BYTES, dtype=np.uint8)
    inner = np.empty(32, dtype=np.uint8)
    for j in range(n):
        a, b, c, d = spans[j, 0], spans[j, 1], spans[j, 2], spans[j, 3]
        ctx[:] = states[key_of[j], 0]
        _update(ctx.ctypes, buf[a:b].ctypes, b - a)
        _update(ctx.ctypes, buf[c:d].ctypes, d - c)
        _final(inner.ctypes, ctx.ctypes)
        ctx[:] = states[key_of[j], 1]
        _update(ctx.ctypes, inner.ctypes, 32)
        _final(out[j].ctypes, ctx.ctypes)
    return out
