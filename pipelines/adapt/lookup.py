"""Find a threat (and its device's twin) on the output topics: what feedback is about."""

from __future__ import annotations

import getpass

import msgspec

from twinguard.operators.io.kafka import scan_topic
from twinguard.pipelines.config import Config
from twinguard.schemas.messages import ThreatEvent, TwinState

_threat = msgspec.json.Decoder(ThreatEvent)
_twin = msgspec.json.Decoder(TwinState)


class ThreatNotFoundError(ValueError):
    """The id is not on the threats topic (a typo, or an id from another deployment)."""


def find_threat(cfg: Config, threat_id: str, timeout_s: float = 120.0) -> ThreatEvent:
    """The threat event with `threat_id` (keys are device ids, so the whole topic is scanned)."""
    needle = threat_id.encode()
    for m in scan_topic(cfg.kafka.client_settings(), cfg.topics.threats, timeout_s):
        value = m.value()
        if value and needle in value:  # cheap filter before decoding
            try:
                ev = _threat.decode(value)
            except msgspec.DecodeError:
                continue
            if ev.id == threat_id:
                return ev
    raise ThreatNotFoundError(f"threat {threat_id!r} is not on {cfg.topics.threats}: give an id "
                              "`twinguard threats` prints")


def device_firmware(cfg: Config, device_id: str, timeout_s: float = 120.0) -> str | None:
    """The device's firmware from its latest twin (twins are keyed by device id), if any."""
    key, fw = device_id.encode(), None
    for m in scan_topic(cfg.kafka.client_settings(), cfg.topics.twins, timeout_s):
        if m.key() == key and m.value():
            try:
                fw = _twin.decode(m.value()).fw
            except msgspec.DecodeError:
                continue
    return fw


def login_name() -> str:
    """Who runs the command (recorded as the analyst / promoter)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
