"""Warnings when input partitions or state shards leave workers of a cluster idle."""

from __future__ import annotations

from twinguard.pipelines.cluster.identity import Place
from twinguard.pipelines.cluster.spread import spread_warnings
from twinguard.pipelines.config import Config


def test_enough_partitions_and_shards_say_nothing(config: Config) -> None:
    assert spread_warnings(config, Place(2, 0, ("a:1", "b:2"), 2), {"t": 4, "a": 8}) == []


def test_fewer_partitions_than_workers_is_warned(config: Config) -> None:
    (w,) = spread_warnings(config, Place(3, 1, ("a:1", "b:2", "c:3"), 2), {"telemetry": 4})
    assert "topic telemetry has 4 partition(s) for 6 workers" in w and "2 worker(s)" in w


def test_fewer_shards_than_workers_is_warned(config: Config) -> None:
    cfg = config.replace(pipeline={"shards": 4})
    (w,) = spread_warnings(cfg, Place(3, 0, ("a:1", "b:2", "c:3"), 2), {})
    assert "shards = 4 for 6 workers" in w
