"""The flame graph drawn from a collapsed py-spy profile: boxes sized by samples, callers below."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from twinguard.benchmarks.flamegraph import WIDTH, render, write


def _folded(tmp_path: Path) -> Path:
    p = tmp_path / "p.folded"
    p.write_text("main (/x/run.py:1);decode (/x/fast.py:10) 30\n"
                 "main (/x/run.py:1);engine (/x/engine.py:5);kernel (/x/k.py:9) 60\n"
                 "main (/x/run.py:2);engine (/x/engine.py:7) 10\n"
                 "garbage line without a count\n")
    return p


def _boxes(svg: str) -> dict[str, tuple[float, float]]:
    """frame label -> (width, y) of its box."""
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own SVG, written by this test
    ns = "{http://www.w3.org/2000/svg}"
    out = {}
    for g in root.iter(f"{ns}g"):
        title = g.find(f"{ns}title")
        rect = g.find(f"{ns}rect")
        assert title is not None and rect is not None
        name = re.sub(r" — .*", "", title.text or "")
        out[name] = (float(rect.get("width", 0)), float(rect.get("y", 0)))
    return out


def test_box_widths_are_sample_shares_and_lines_of_a_function_merge(tmp_path: Path) -> None:
    svg = render(_folded(tmp_path), "test")
    assert svg is not None
    boxes = _boxes(svg)
    assert boxes["all (100 samples)"][0] == WIDTH
    assert boxes["main (/x/run.py)"][0] == WIDTH  # two lines of main: one box
    assert boxes["engine (/x/engine.py)"][0] == WIDTH * 0.7
    assert boxes["decode (/x/fast.py)"][0] == WIDTH * 0.3
    assert boxes["kernel (/x/k.py)"][0] == WIDTH * 0.6
    # callers below their callees
    assert boxes["main (/x/run.py)"][1] > boxes["engine (/x/engine.py)"][1] > boxes["kernel (/x/k.py)"][1]


def test_an_empty_profile_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "e.folded"
    empty.write_text("")
    out = tmp_path / "e.svg"
    assert not write(empty, out, "t")
    assert not out.exists()
    assert not write(tmp_path / "missing.folded", out, "t")
