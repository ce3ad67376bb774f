"""What the dashboard shows, kept current by its feeds: fleet, threat feed, risk, threats over time, lag.

Thread-safe: feeds write from their own threads, each page's event stream reads a snapshot and waits
on its own queue for new threats (pushed, not polled, so a threat reaches the page at once).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from dataclasses import asdict
from typing import Any

import msgspec

from twinguard.pipelines.consume.reader import ReadStats, SeenIds
from twinguard.pipelines.kafka.risk_report import rank
from twinguard.schemas.messages import ThreatEvent, TwinState

RECENT_THREATS = 200  # rows the feed keeps
RISK_ROWS = 15
SECOND_MS = 1000  # threats over time are counted per second of event time (window end) ...
KEEP_MS = 10 * 60 * SECOND_MS  # ... for the last ten minutes (older seconds are dropped) ...
BARS = 30  # ... and drawn as at most this many bars of a readable width:
BAR_WIDTHS_MS = (1_000, 2_000, 5_000, 10_000, 30_000, 60_000)
SUBSCRIBER_BACKLOG = 1000  # a page that stops reading is dropped rather than growing memory


class DashboardState:
    """The aggregates a page draws, plus the queues of the pages that are open."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._twins: dict[str, TwinState] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_THREATS)
        self._seen = SeenIds()
        self._per_bucket: Counter[tuple[int, str]] = Counter()
        self._lag: dict[str, int | None] = {}
        self._notes: dict[str, str] = {}
        self._counts = Counter[str]()
        self._pages: list[queue.Queue[dict[str, Any]]] = []
        self.reader_stats: ReadStats | None = None  # the live threats reader's, if any
        self.updated_at = time.time()

    def add_threat(self, ev: ThreatEvent) -> None:
        """Count a threat (once per id) and push it to every open page."""
        doc = msgspec.to_builtins(ev)
        with self._lock:
            if not self._seen.first_time(ev.id):
                self._counts["duplicates"] += 1
                return
            self._counts["threats"] += 1
            self._recent.appendleft(doc)
            self._count_in_time(ev.window_end // SECOND_MS * SECOND_MS, ev.threat)
            pages = list(self._pages)
            self.updated_at = time.time()
        for q in pages:
            try:
                q.put_nowait(doc)
            except queue.Full:
                self.unsubscribe(q)

    def _count_in_time(self, second: int, threat: str) -> None:
        """Count per second; forget seconds older than KEEP_MS before the newest (bounded memory)."""
        newest = max((b for b, _ in self._per_bucket), default=second)
        if second < newest - KEEP_MS:
            return
        self._per_bucket[(second, threat)] += 1
        if second > newest:
            for old in [k for k in self._per_bucket if k[0] < second - KEEP_MS]:
                del self._per_bucket[old]

    def put_twin(self, device_id: str, twin: TwinState | None) -> None:
        """The latest twin of a device (None: a tombstone, the device was removed)."""
        with self._lock:
            if twin is None:
                self._twins.pop(device_id, None)
            else:
                self._twins[device_id] = twin
            self.updated_at = time.time()

    def count(self, what: str, n: int = 1) -> None:
        """Records a feed skipped (unreadable twins, ...): shown, never hidden."""
        with self._lock:
            self._counts[what] += n

    def set_lag(self, lag: dict[str, int | None], note: str = "") -> None:
        with self._lock:
            self._lag = dict(lag)
            self._notes["lag"] = note

    def subscribe(self) -> queue.Queue[dict[str, Any]]:
        q: queue.Queue[dict[str, Any]] = queue.Queue(SUBSCRIBER_BACKLOG)
        with self._lock:
            self._pages.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            if q in self._pages:
                self._pages.remove(q)

    def snapshot(self) -> dict[str, Any]:
        """Everything a page draws, as JSON-ready builtins."""
        with self._lock:
            twins = list(self._twins.values())
            fleet: dict[str, Counter[str]] = {}
            for t in twins:
                fleet.setdefault(t.device_type, Counter())[t.status] += 1
            counts = dict(self._counts)
            if self.reader_stats is not None:
                counts["unreadable_threats"] = self.reader_stats.unreadable
                counts["duplicates"] = self.reader_stats.duplicates
            return {"source": self.source, "updated_at": int(self.updated_at * 1000),
                    "devices": len(twins),
                    "fleet": {k: dict(v) for k, v in sorted(fleet.items())},
                    "risk": [asdict(r) for r in rank(twins, RISK_ROWS)],
                    "series": self._series(), "lag": dict(self._lag),
                    "lag_note": self._notes.get("lag", ""), "counts": counts,
                    "threats": list(self._recent)}

    def _series(self) -> dict[str, Any]:
        """Threats per class per bar, from the first counted second to the newest; the bar width is
        the smallest of BAR_WIDTHS_MS that needs at most BARS bars."""
        if not self._per_bucket:
            return {"bucket_ms": BAR_WIDTHS_MS[0], "starts": [], "classes": {}}
        first, last = min(b for b, _ in self._per_bucket), max(b for b, _ in self._per_bucket)
        width = next((w for w in BAR_WIDTHS_MS if (last - first) // w < BARS), BAR_WIDTHS_MS[-1])
        start = first // width * width
        starts = list(range(start, last + 1, width))
        classes: dict[str, list[int]] = {c: [0] * len(starts)
                                         for c in sorted({c for _, c in self._per_bucket})}
        for (second, threat), n in self._per_bucket.items():
            classes[threat][(second - start) // width] += n
        return {"bucket_ms": width, "starts": starts, "classes": classes}
