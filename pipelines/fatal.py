"""Fatal errors as one readable block: the real cause first, then the chain that carried it.

Bytewax wraps an exception raised in a step as `BytewaxRuntimeError: error calling mapper in step
...` (and again per layer); the message twinguard built (the brake's reason, a missing topic) is at
the end of the `__cause__` chain, which the command line would otherwise never show.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

MAX_CHAIN = 12  # a chain longer than this is cut (and cycles cannot loop)
_STEP = re.compile(r'in step "([^"]+)"')
DELIBERATE = (ValueError, RuntimeError, FileNotFoundError)
ROOT = Path(__file__).resolve().parent.parent  # the folder holding operators/, pipelines/, ...


def chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first (explicit `raise ... from` first, else the context)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < MAX_CHAIN:
        out.append(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return out


def describe(exc: BaseException, prefix: str) -> str:
    """`prefix: error: <root cause>`, then where (step, or source line of an unexpected error)
    and the whole chain when there is more than the root."""
    links = chain(exc)
    root = next((e for e in reversed(links) if not _is_bytewax(e)), links[-1])
    lines = [f"{prefix}: error: {_text(root)}"]
    step = next((m.group(1) for e in links if (m := _STEP.search(str(e)))), None)
    if step:
        lines.append(f"  in dataflow step {step}")
    if not _ours(root) and root.__traceback__ is not None:
        frame = traceback.extract_tb(root.__traceback__)[-1]
        lines.append(f"  raised at {_short(frame.filename)}:{frame.lineno} in {frame.name}")
    if len(links) > 1:
        lines.append("  cause chain (outermost first):")
        lines += [f"    {type(e).__name__}: {_first_line(str(e))}" for e in links]
    return "\n".join(lines)


def _is_bytewax(e: BaseException) -> bool:
    return type(e).__module__.startswith("bytewax")


def _ours(e: BaseException) -> bool:
    """Errors raised on purpose carry a message that says what to fix: twinguard's own types and
    the plain built-ins its code raises (not subclasses such as RecursionError: those are bugs)."""
    return type(e).__module__.startswith("twinguard") or type(e) in DELIBERATE


def _text(e: BaseException) -> str:
    msg = str(e) or "(no message)"
    return msg if _ours(e) else f"{type(e).__name__}: {msg}"


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no message)"
    return line if len(line) <= limit else line[:limit] + "..."


def _short(filename: str) -> str:
    """A twinguard source path relative to the package root; others as they are."""
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else filename
