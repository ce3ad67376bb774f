"""Random mutations of a valid message: bytes (flips, cuts, splices) and structure (types, extremes,
nesting, unknown members, hostile strings), one or a few per message, reproducible by seed."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

EXTREMES: tuple[Any, ...] = (0, -1, 2**53, 2**53 + 1, 2**63, -(2**63) - 1, 10**40, 1e308, -1e308,
                             5e-324, 1e-320, 0.1, True, None, "", "1", [], {}, "NaN")
NUMBER_TEXT = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 400, "0x10", "01", "1.",
               ".5", "-", "1e", "+1")
STRINGS = ("\x00", "\x1b[2J", "\u202e", "\ud800", "A" * 70_000, "é" * 40, "\n", "../../etc/passwd",
           "'; DROP TABLE twins; --", "%s%s%n", "\uffff")


def mutations(value: bytes, rnd: random.Random, now_ms: int) -> bytes:
    """`value` with one random mutation, sometimes two or three (so that some stay valid)."""
    for _ in range(rnd.choices((1, 2, 3), (6, 3, 1))[0]):
        value = rnd.choice(_MUTATORS)(value, rnd, now_ms)
    return value


def _flip(value: bytes, rnd: random.Random, _now: int) -> bytes:
    b = bytearray(value)
    for _ in range(rnd.randint(1, 8)):
        if b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    return bytes(b)


def _cut(value: bytes, rnd: random.Random, _now: int) -> bytes:
    return value[:rnd.randrange(len(value) + 1)]


def _splice(value: bytes, rnd: random.Random, _now: int) -> bytes:
    """A slice of the message inserted elsewhere in it (duplicated keys, broken nesting)."""
    if len(value) < 2:
        return value + value
    a, b = sorted(rnd.sample(range(len(value)), 2))
    at = rnd.randrange(len(value))
    return value[:at] + value[a:b] + value[at:]


def _number_text(value: bytes, rnd: random.Random, _now: int) -> bytes:
    """A number literal replaced by text JSON parsers disagree on."""
    digits = [i for i, c in enumerate(value) if 48 <= c <= 57]
    if not digits:
        return value
    i = rnd.choice(digits)
    j = i
    while j < len(value) and value[j] in b"0123456789.eE+-":
        j += 1
    return value[:i] + rnd.choice(NUMBER_TEXT).encode() + value[j:]


def _structure(value: bytes, rnd: random.Random, now_ms: int) -> bytes:
    """Parse, change one member deep or shallow, encode again (unparseable input: a byte flip)."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return _flip(value, rnd, now_ms)
    paths = list(_paths(doc))
    if not paths:
        return value
    parent, key = rnd.choice(paths)
    parent[key] = rnd.choice(_REPLACERS)(parent[key], rnd, now_ms)
    if rnd.random() < 0.2 and isinstance(doc, dict):
        doc[rnd.choice(("x", "sig", "type", "ts", "seq", "signals", "net"))] = rnd.choice(EXTREMES)
    try:
        return json.dumps(doc, ensure_ascii=rnd.random() < 0.5).encode("utf-8", "surrogatepass")
    except RecursionError:  # nested past what json.dumps can write: mutate the bytes instead
        return _flip(value, rnd, now_ms)


def _paths(doc: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every member and item, nested ones included."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
            node, list) else ()
        for k, v in items:
            out.append((node, k))
            if isinstance(v, dict | list):
                stack.append(v)
    return out


def _extreme(_v: Any, rnd: random.Random, _now: int) -> Any:
    return rnd.choice(EXTREMES)


def _hostile_string(_v: Any, rnd: random.Random, _now: int) -> Any:
    return rnd.choice(STRINGS)


def _nest(v: Any, rnd: random.Random, _now: int) -> Any:
    for _ in range(rnd.choice((2, 50, 400))):  # deeper: see catalogue.deep_nesting
        v = [v] if rnd.random() < 0.5 else {"v": v}
    return v


def _time(_v: Any, rnd: random.Random, now_ms: int) -> Any:
    return rnd.choice((now_ms + 23 * 3_600_000, now_ms + 25 * 3_600_000, -1, 0, 2**62,
                       "2026-01-01T00:00:00", "2026-13-45T99:99:99Z", "now", now_ms / 3))


_REPLACERS: tuple[Callable[[Any, random.Random, int], Any], ...] = (
    _extreme, _hostile_string, _nest, _time)
_MUTATORS: tuple[Callable[[bytes, random.Random, int], bytes], ...] = (
    _flip, _cut, _splice, _number_text, _structure, _structure, _structure)
