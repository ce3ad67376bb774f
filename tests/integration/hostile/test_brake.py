"""Real broker, real CLI: a garbage flood under one key is contained; garbage across many keys (a
broken deploy) stops the run with the brake's own reason as the first line (issue 18, item 5)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import twinguard, write_config
from tests.support.kafka import read_outputs
from twinguard.operators.io.kafka import produce_all, producer
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation

FLOOD = 6_000  # stopped the whole fleet in 1.6 s, and again on every restart


def produce(cfg: Config, items: list[tuple[bytes, bytes]]) -> None:
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, cfg.topics.telemetry, items, errors.append)
    assert p.flush(60) == 0 and not errors, errors


def test_a_garbage_flood_on_one_key_is_quarantined_and_the_fleet_runs_on(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    sent = produce_simulation(cfg, devices=60, duration_s=20, rate=None, seed=5,
                              labels_path=tmp_path / "labels.jsonl")
    produce(cfg, [(b"thermostat-000001", b"{garbage")] * FLOOD)
    result = twinguard("--config", str(write_config(cfg, tmp_path / "t.toml")), "run",
                       "--until-idle", "4", "--insecure-dev-key")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "quarantined" in result.stderr  # the operator is told, once

    _, dead, twins = read_outputs(cfg)
    processed = sum(int(str(t["version"])) for t in twins.values())
    assert processed + len(dead) == sent + FLOOD
    quarantined = [d for d in dead if str(d["reason"]).startswith("quarantined key")]
    assert len(quarantined) >= FLOOD - 100 and all(d["reason"] for d in dead)
    assert "malformed JSON" in str(quarantined[0]["reason"])  # the original reason is kept
    assert len(twins) == 60  # every device of the fleet, the flooded key's included


def test_garbage_across_many_keys_stops_with_the_brakes_reason_first(
        unique_topics: Config, tmp_path: Path) -> None:
    cfg = unique_topics
    produce(cfg, [(f"dev-{i % 500}".encode(), b"not json") for i in range(FLOOD)])
    config = write_config(cfg, tmp_path / "t.toml")
    with config.open("a") as f:
        f.write("[brake]\nmax_consecutive = 1000\n")  # 6,000 garbage messages on two partitions
    for attempt in range(2):  # a restart re-reads the input: the same clear message again
        result = twinguard("--config", str(config), "run", "--until-idle", "4",
                           "--insecure-dev-key", "--recovery-dir", str(tmp_path / "rec"))
        assert result.returncode == 2, (attempt, result.stderr[-3000:])
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("twinguard run: error")]
        assert len(errors) == 1, result.stderr[-3000:]
        assert errors[0].startswith(f"twinguard run: error: dead-letter brake on "
                                    f"{cfg.topics.telemetry}["), errors[0]
        assert "not twinguard telemetry" in errors[0] and "calling `mapper`" not in errors[0]
        assert "DeadLetterBrakeError" in result.stderr  # the chain, below the headline
    _, dead, _ = read_outputs(cfg)
    assert all(d["reason"] for d in dead)
