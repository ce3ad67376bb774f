"""A flame graph (SVG) from a py-spy raw/collapsed profile, with no tool beyond the standard library.

py-spy writes one format per recording; the benchmarks record `raw` (collapsed stacks) because
`profiling.summarize` ranks frames from it, and this draws the same samples as a flame graph: one
box per frame, width = share of samples, callers below callees, hover for the numbers. Frames are
shortened like the text profile ('fn (file.py)'), so a function's lines merge into one box.

    python -m twinguard.benchmarks.flamegraph PROFILE.folded OUT.svg [--title TEXT]
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from twinguard.benchmarks.profiling import _short

WIDTH, ROW, FONT = 1200, 16, 11
MIN_PX = 0.3  # boxes narrower than this are not drawn (their samples still count in the parent)


@dataclass
class _Node:
    samples: int = 0
    kids: dict[str, _Node] = field(default_factory=dict)


def _tree(folded: Path) -> _Node:
    root = _Node()
    for row in folded.read_text(errors="replace").splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        root.samples += n
        node = root
        for frame in filter(None, stack.split(";")):
            node = node.kids.setdefault(_short(frame), _Node())
            node.samples += n
    return root


def _colour(name: str) -> str:
    """Warm colours, stable per frame name (same function, same colour across graphs)."""
    h = hashlib.blake2s(name.encode(), digest_size=2).digest()
    return f"rgb({205 + h[0] % 50},{80 + h[1] % 120},{40 + h[0] % 40})"


def render(folded: Path, title: str) -> str | None:
    """The SVG text; None when the profile holds no samples."""
    root = _tree(folded)
    if root.samples == 0:
        return None
    scale = WIDTH / root.samples
    boxes: list[str] = []
    depth_max = 0

    def walk(node: _Node, name: str, x: float, depth: int) -> None:
        nonlocal depth_max
        w = node.samples * scale
        if w < MIN_PX:
            return
        depth_max = max(depth_max, depth)
        pct = 100.0 * node.samples / root.samples
        label = escape(name)
        chars = int(w / (FONT * 0.6))
        text = label if len(name) <= chars else (escape(name[:chars - 2]) + ".." if chars > 3 else "")
        boxes.append(f'<g><title>{label} — {node.samples} samples, {pct:.1f}%</title>'
                     f'<rect x="{x:.1f}" y="{{Y{depth}}}" width="{w:.1f}" height="{ROW - 1}" '
                     f'fill="{_colour(name)}"/>'
                     f'<text x="{x + 2:.1f}" y="{{T{depth}}}">{text}</text></g>')
        for kid_name, kid in sorted(node.kids.items()):
            walk(kid, kid_name, x, depth + 1)
            x += kid.samples * scale

    walk(root, f"all ({root.samples} samples)", 0.0, 0)
    height = (depth_max + 1) * ROW + 40
    svg = "\n".join(boxes)
    for d in range(depth_max + 1):  # callers at the bottom, like classic flame graphs
        y = height - 10 - (d + 1) * ROW
        svg = svg.replace(f"{{Y{d}}}", str(y)).replace(f"{{T{d}}}", str(y + ROW - 4))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="monospace" font-size="{FONT}">\n'
            f'<rect width="100%" height="100%" fill="#fff"/>\n'
            f'<text x="4" y="16" font-size="13">{escape(title)}</text>\n{svg}\n</svg>\n')


def write(folded: Path, out: Path, title: str) -> bool:
    """Draw `folded` into `out`; False (nothing written) when there are no samples."""
    if not folded.exists():
        return False
    svg = render(folded, title)
    if svg is None:
        return False
    out.write_text(svg)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folded", type=Path, help="py-spy raw (collapsed) profile")
    ap.add_argument("out", type=Path, help="SVG to write")
    ap.add_argument("--title", default="", help="text above the graph")
    a = ap.parse_args()
    if not write(a.folded, a.out, a.title or a.folded.name):
        raise SystemExit(f"{a.folded}: no samples (is it a py-spy raw profile?)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
