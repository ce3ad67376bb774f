"""Ground-truth attack labels: which device was attacked, how, and when (JSON lines files)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_FIELDS = ("device_id", "threat", "start", "end")


class LabelError(ValueError):
    """A labels file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class AttackLabel:
    """One attack on one device; start/end are epoch ms of its first and last message (inclusive).

    `user` marks an attack by an operator (insider): it is matched by the threats naming that user,
    on whichever device; `device_id` is then the first device it touched."""

    device_id: str
    threat: str
    start: int
    end: int
    user: str | None = None

    def covers(self, ts_ms: int) -> bool:
        """True when `ts_ms` lies inside the attack interval."""
        return self.start <= ts_ms <= self.end


def write_labels(labels: Iterable[AttackLabel], path: str | Path) -> None:
    """Write one JSON object per line: {"device_id", "threat", "start", "end"} (epoch ms), plus
    "user" for operator (insider) attacks."""
    lines = [json.dumps({"device_id": lb.device_id, "threat": lb.threat,
                         "start": int(lb.start), "end": int(lb.end),
                         **({"user": lb.user} if lb.user is not None else {})}) for lb in labels]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_labels(path: str | Path) -> list[AttackLabel]:
    """Parse a labels file; start/end may be epoch ms ints or RFC 3339 strings."""
    out: list[AttackLabel] = []
    text = Path(path).read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            out.append(_parse_line(line, f"{path}:{lineno}"))
    return out


def _parse_line(line: str, where: str) -> AttackLabel:
    """One label from one JSON line; `where` (file:line) prefixes every error."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise LabelError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise LabelError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _FIELDS if k not in obj]
    if missing:
        raise LabelError(f"{where}: missing key(s) {', '.join(missing)}")
    for key in ("device_id", "threat"):
        if not isinstance(obj[key], str) or not obj[key]:
            raise LabelError(f"{where}: '{key}' must be a non-empty string")
    start, end = _epoch_ms(obj["start"], "start", where), _epoch_ms(obj["end"], "end", where)
    if end < start:
        raise LabelError(f"{where}: end ({end}) is before start ({start})")
    user = obj.get("user")
    if user is not None and (not isinstance(user, str) or not user):
        raise LabelError(f"{where}: 'user' must be a non-empty string when present")
    return AttackLabel(obj["device_id"], obj["threat"], start, end, user)


def _epoch_ms(value: Any, key: str, where: str) -> int:
    """Epoch ms from an int or an RFC 3339 timestamp string (offset required)."""
    # bool is an int subclass; true/false as a timestamp is surely a mistake
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, str):
        ms = _rfc3339_ms(value, key, where)
    else:
        raise LabelError(f"{where}: '{key}' must be epoch ms (int) or an RFC 3339 string, "
                         f"got {json.dumps(value)}")
    if ms < 0:
        raise LabelError(f"{where}: '{key}' is before 1970 ({value!r}); epoch ms must be >= 0")
    return ms


def _rfc3339_ms(value: str, key: str, where: str) -> int:
    """Epoch ms of an RFC 3339 timestamp; sub-millisecond digits are truncated."""
    try:
        dt = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise LabelError(f"{where}: '{key}' is not an RFC 3339 timestamp: {value!r}") from None
    if dt.tzinfo is None:
        raise LabelError(f"{where}: '{key}' needs a UTC offset (e.g. 'Z' or '+02:00'): {value!r}")
    return (dt - _EPOCH) // _MS
