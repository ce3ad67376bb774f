"""`twinguard intel publish|withdraw`: put threat intel on the compacted intel topic (key = indicator).

A file is validated whole before anything is produced, so a bad line never leaves half a feed behind.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from twinguard.operators.intel.table import DEFAULT_LIMITS, IntelLimits, read_feed
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.config import Config


def feed_messages(path: Path, limits: IntelLimits = DEFAULT_LIMITS) -> list[tuple[bytes, bytes]]:
    """(key, value) per entry of a JSON-lines feed; keys are the normalised indicators. A line the
    reader would reject (too long, too broad a network) stops it here, before anything is sent."""
    out = [(entry.indicator.encode(), line) for line, entry in read_feed(path, limits)]
    return out


def indicator_key(indicator: str) -> bytes:
    """The key `publish` used for an indicator: addresses and networks in canonical form."""
    text = indicator.strip()
    try:
        return str(ipaddress.ip_address(text)).encode()
    except ValueError:
        pass
    try:
        return str(ipaddress.ip_network(text, strict=False)).encode()
    except ValueError:
        return text.encode()


def send(cfg: Config, items: list[tuple[bytes, bytes]]) -> int:
    """Produce to the intel topic and wait until the broker has every message."""
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, cfg.topics.intel, items, errors.append)
    left = p.flush(60)
    if left or errors:
        raise RuntimeError(f"{left} intel messages not delivered to {cfg.kafka.brokers}: {errors[:3]}")
    return len(items)
