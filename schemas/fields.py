"""Patterns and limits of the device-controlled strings in the contracts (addresses, firmware, names).

Every one of these strings reaches twin state, response actions or a terminal, so the contracts accept
only short, printable values of the expected shape; the Numba parser (operators/decode/jsonscan.py)
mirrors them, and a property test holds the two together.
"""

from __future__ import annotations


def whole(body: str) -> str:
    """A pattern the entire string must match. msgspec searches with Python's `re`, where `$` also
    matches before a final newline (an address plus a newline would pass); the lookahead closes
    that, and unlike an end-of-string escape it means the same in JSON Schema's (ECMA 262) regex."""
    return rf"^(?:{body})$(?!\n)"


MAX_IP = 45  # the longest textual IPv6 address (with an embedded IPv4 tail)
MAX_FW = 64
MAX_NAME = 128  # user names and login principals

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # 0..255, no leading zeros
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{IPV4})"


def _ipv6() -> str:
    """The IPv6address rule of RFC 3986 section 3.2.2 as a regex: eight groups, or fewer with
    one '::', the last two groups optionally written as an IPv4 address."""
    right = [rf"(?:{_H16}:){{4}}{_LS32}", rf"(?:{_H16}:){{3}}{_LS32}", rf"(?:{_H16}:){{2}}{_LS32}",
             rf"{_H16}:{_LS32}", _LS32, _H16, ""]
    forms = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    for k, tail in enumerate(right):  # at most k groups (and their colons) before the '::'
        head = rf"(?:(?:{_H16}:){{0,{k}}}{_H16})?" if k else rf"(?:{_H16})?"
        forms.append(rf"{head}::{tail}")
    return "|".join(f"(?:{f})" for f in forms)


IPV6 = _ipv6()
IP_PATTERN = whole(f"{IPV4}|{IPV6}")
# no ':' (intel names firmware as <type>:<version>), no spaces, starts with a letter or digit
FW_PATTERN = whole(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")
NAME_PATTERN = whole(r"[A-Za-z0-9._@+-]+")
DEVICE_ID_PATTERN = whole(r"[A-Za-z0-9._:/-]+")
# an action aims at a device id, a user or an address: the union of their characters
TARGET_PATTERN = whole(r"[A-Za-z0-9._:/@+-]+")

# what a schema error says instead of repeating the regex (msgspec quotes the pattern it failed)
PATTERN_MEANING = {
    IP_PATTERN: "that is an IPv4 (dotted quad, no leading zeros) or IPv6 address",
    FW_PATTERN: "that is a firmware version: a letter or digit, then letters, digits and . _ + ~ -",
    NAME_PATTERN: "that is a name of letters, digits and . _ @ + -",
    TARGET_PATTERN: "that is a device id, user or address",
    DEVICE_ID_PATTERN: "that is a device id of letters, digits and . _ : / -",
}
