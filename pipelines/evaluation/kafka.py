"""`twinguard evaluate --brokers`: score what is on the threats topic against simulator labels."""

from __future__ import annotations

import json
from pathlib import Path

from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.evaluation.match import evaluate, format_table
from twinguard.pipelines.sim.labels import read_labels


def evaluate_topic(cfg: Config, labels_path: Path, devices_from: str, out: str | None) -> int:
    """Print the detection table; exit status 1 when an attack was missed or misclassified."""
    settings = cfg.kafka.client_settings()
    threats = [json.loads(v) for _, v in read_topic(settings, cfg.topics.threats)]
    labels = read_labels(labels_path)
    if devices_from == "twins":
        devices = {k.decode() for k, _ in read_topic(settings, cfg.topics.twins) if k}
    else:
        devices = {lab.device_id for lab in labels}
    ev = evaluate(threats, labels, devices)
    print(format_table(ev))
    if out:
        Path(out).write_text(json.dumps(ev.summary(), indent=2) + "\n")
    s = ev.summary()
    return 0 if s["detected_right_class"] == s["attacks"] else 1
