"""Text for terminals: device- and feed-controlled strings with their non-printable characters escaped.

Firmware, intel notes, addresses and reasons come from outside; printed raw, an ESC sequence clears the
screen or retitles the terminal, a newline forges table rows and a bidi override reverses what follows.
Every human-readable output passes its outside strings through `printable`.
"""

from __future__ import annotations

import logging
import unicodedata

# control (Cc), format incl. bidi overrides and zero-width (Cf), surrogate (Cs), private use (Co),
# unassigned (Cn), line and paragraph separators (Zl, Zp)
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: object) -> str:
    """str(value) with every character a terminal would act on or hide written as an escape
    (\\x1b, \\u202e): safe to print, and still says what was there."""
    text = str(value)
    if text.isascii() and text.isprintable():  # the common case, one C-level pass
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _HIDDEN else c for c in text)


def printable_lines(text: str) -> str:
    """`printable` for a block of lines: its newlines stay, everything else is escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))


class PrintableFormatter(logging.Formatter):
    """Log lines whose message (arguments included) cannot act on the terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = printable_lines(record.message)
        return super().formatMessage(record)
