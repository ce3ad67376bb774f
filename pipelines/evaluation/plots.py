"""PNG plots people would rather look at than read: detections against the injected attacks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.schemas.features import THREAT_CLASSES


def plot_demo(threats: list[dict[str, Any]], labels: list[AttackLabel], devices: list[str],
              path: Path) -> Path:
    """Left: threats per class vs attacks injected. Right: timeline of attacks and detections."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c in THREAT_CLASSES if c != "normal"]
    colors = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(classes)}
    fig, (bars, timeline) = plt.subplots(1, 2, figsize=(14, 5.5), width_ratios=(1, 1.6))
    got, want = Counter(t["threat"] for t in threats), Counter(lab.threat for lab in labels)
    xs = range(len(classes))
    bars.barh([x + 0.2 for x in xs], [want[c] for c in classes], 0.4, color="#bbbbbb",
              label="attacks injected")
    bars.barh([x - 0.2 for x in xs], [got[c] for c in classes], 0.4,
              color=[colors[c] for c in classes], label="threat events")
    bars.set_yticks(list(xs), classes)
    bars.invert_yaxis()
    bars.set_xlabel("count")
    bars.set_title("Threat events by class")
    bars.legend(loc="lower right")
    row = {d: i for i, d in enumerate(sorted({lab.device_id for lab in labels}))}
    t0 = min([lab.start for lab in labels] + [t["window_start"] for t in threats], default=0)
    for lab in labels:
        y = row[lab.device_id]
        timeline.plot([(lab.start - t0) / 1000, (lab.end - t0) / 1000], [y, y], lw=6,
                      color=colors[lab.threat], alpha=0.35, solid_capstyle="butt")
    for t in threats:
        y = row.get(t["device_id"], -1)
        marker = "o" if y >= 0 else "x"
        timeline.scatter((t["window_end"] - t0) / 1000, y, s=22, marker=marker,
                         color=colors.get(t["threat"], "black"), zorder=3)
    timeline.set_xlabel("seconds since start (bar = attack, dot = threat event at window end)")
    timeline.set_ylabel(f"attacked devices (row -1: false alarms on the other {len(devices)})")
    timeline.set_title("Attacks and their detections")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
