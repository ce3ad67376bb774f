"""Terminal output: outside strings are escaped, never acted on by the terminal."""

from __future__ import annotations

import logging

import pytest

from twinguard.pipelines.text import PrintableFormatter, printable, printable_lines

HOSTILE = {
    "clear screen": ("4.2.0\x1b[2J\x1b[H", "4.2.0\\x1b[2J\\x1b[H"),
    "OSC title": ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    "C1 CSI": ("a\x9b31mb", "a\\x9b31mb"),
    "forged row": ("4.2.0\n   1  100.0  fake-1", "4.2.0\\x0a   1  100.0  fake-1"),
    "carriage return": ("ok\rEVIL", "ok\\x0dEVIL"),
    "bidi override": ("abc\u202edcba", "abc\\u202edcba"),
    "bidi isolate": ("x\u2066y\u2069", "x\\u2066y\\u2069"),
    "zero width": ("ro\u200bot", "ro\\u200bot"),
    "line separator": ("a\u2028b", "a\\u2028b"),
    "DEL": ("a\x7fb", "a\\x7fb"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_control_escape_and_bidi_characters_are_escaped(case: str) -> None:
    raw, want = HOSTILE[case]
    assert printable(raw) == want
    assert printable(want) == want  # already harmless text stays as it is


def test_ordinary_text_is_untouched() -> None:
    for text in ("thermostat-000001", "firmware V3.3.14 not on the allowlist", "café ☕ Zürich", ""):
        assert printable(text) == text
    assert printable(42) == "42"


def test_printable_lines_keeps_only_the_newlines() -> None:
    assert printable_lines("a\x1b[2J\nb\tc") == "a\\x1b[2J\nb\\x09c"


def test_log_records_are_escaped_arguments_included() -> None:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "intel note %s", ("\x1b]0;x\x07",),
                               None)
    line = PrintableFormatter("%(levelname)s %(message)s").format(record)
    assert line == "WARNING intel note \\x1b]0;x\\x07"
