"""The Grafana dashboard in deploy/grafana/ queries only metrics twinguard exports, and shows each."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.metrics import REPO, exported_names
from twinguard.pipelines.metrics import instruments

DASHBOARD = REPO / "deploy/grafana/twinguard-dashboard.json"
METRIC = re.compile(r"\btwinguard_[a-z0-9_]+")


def queries(node: Any) -> list[str]:
    """Every PromQL expression in the dashboard (panel targets and template variable queries)."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "query") and isinstance(v, str)]
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


def test_every_query_names_an_exported_metric() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = queries(dash)
    assert len(exprs) >= 10
    used = {name for e in exprs for name in METRIC.findall(e)}
    assert used <= exported_names(), used - exported_names()


def test_every_metric_has_a_panel() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {name for p in panels for t in p["targets"] for name in METRIC.findall(t["expr"])}
    families = {getattr(instruments, n)._name for n in dir(instruments)
                if hasattr(getattr(instruments, n), "_name")}
    missing = {f for f in families if not any(u.startswith(f) for u in used)}
    assert not missing, missing
