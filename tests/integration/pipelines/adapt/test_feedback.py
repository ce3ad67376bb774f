"""Real broker, real CLI: `twinguard feedback` refuses unknown threats, writes a verdict; a later
`twinguard run` (a new process: suppressions rebuilt from the topic) hides that threat class for the
device type, counts what it hid in the twins, writes no action for it, and dead-letters malformed
and forged feedback."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import msgspec

from tests.support.cli import twinguard, write_config
from tests.support.cluster import fresh_outputs
from tests.support.kafka import produce, read_outputs
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config
from twinguard.pipelines.sim.simulate import produce_simulation
from twinguard.schemas.messages import Feedback


def test_feedback_suppresses_a_class_for_a_type_and_counts_what_it_hid(unique_topics: Config,
                                                                       tmp_path: Path) -> None:
    cfg = unique_topics
    produce_simulation(cfg, devices=120, duration_s=45, rate=None, seed=5,
                       labels_path=tmp_path / "labels.jsonl")
    first = str(write_config(cfg, tmp_path / "first.toml"))
    run = twinguard("--config", first, "run", "--until-idle", "6", "--insecure-dev-key")
    assert run.returncode == 0, run.stderr[-3000:]
    threats, _, _ = read_outputs(cfg)
    pairs = Counter((t["device_type"], t["threat"]) for t in threats)
    assert len(pairs) >= 2, pairs  # one pair to suppress, others that must still be reported
    (dtype, cls), _ = pairs.most_common(1)[0]
    target = [t for t in threats if (t["device_type"], t["threat"]) == (dtype, cls)]

    unknown = twinguard("--config", first, "feedback", "0" * 24, "--verdict", "false_positive")
    assert unknown.returncode == 2, unknown.stderr
    progress, error = unknown.stderr.strip().splitlines()  # the error itself is one line
    assert progress.startswith("looking 000") and error.startswith("twinguard feedback: error: threat '000")
    assert error.endswith("is not on " + cfg.topics.threats + ": give an id `twinguard threats` prints")
    given = twinguard("--config", first, "feedback", target[0]["id"], "--verdict", "false_positive",
                      "--scope", "type", "--ttl", "2h", "--note", "lab traffic", "--analyst", "soc.bob")
    assert given.returncode == 0, given.stderr
    assert f"{cls} suppressed for type {dtype} until" in given.stdout
    records = [msgspec.json.decode(v, type=Feedback)
               for _, v in read_topic(cfg.kafka.client_settings(), cfg.topics.feedback)]
    assert [(f.threat_id, f.device_type, f.threat, f.scope, f.ttl_ms, f.analyst) for f in records] == [
        (target[0]["id"], dtype, cls, "type", 7_200_000, "soc.bob")]

    forged = msgspec.structs.replace(records[0], threat_id="f" * 24)
    produce(cfg, cfg.topics.feedback, [(b"junk", b"{not json"),
                                       (b"f" * 24, msgspec.json.encode(forged))])

    # a new process over the same input, into fresh output topics
    cfg2 = fresh_outputs(cfg, "second")
    second = str(write_config(cfg2, tmp_path / "second.toml"))
    t0 = int(time.time() * 1000)
    run = twinguard("--config", second, "run", "--until-idle", "6", "--insecure-dev-key")
    assert run.returncode == 0, run.stderr[-3000:]
    threats2, dead2, twins2 = read_outputs(cfg2)
    assert not [t for t in threats2 if (t["device_type"], t["threat"]) == (dtype, cls)]
    others = {t["id"] for t in threats if (t["device_type"], t["threat"]) != (dtype, cls)}
    assert {t["id"] for t in threats2} == others  # everything else still reported, same ids

    hid = {d: t for d, t in twins2.items() if t.get("suppressed_threats", 0) > 0}
    assert sum(t["suppressed_threats"] for t in hid.values()) == len(target)
    assert {t["device_type"] for t in hid.values()} == {dtype}
    assert {t["last_suppressed"]["threat"] for t in hid.values()} == {cls}
    assert {t["last_suppressed"]["id"] for t in hid.values()} <= {t["id"] for t in target}

    actions = [json.loads(v) for _, v in read_topic(cfg2.kafka.client_settings(), cfg2.topics.actions)]
    assert not {a["threat_id"] for a in actions} & {t["id"] for t in target}
    assert {a["threat_id"] for a in actions} <= others
    fb_dead = sorted((d["stage"], d["key"], d["reason"].split(":")[0]) for d in dead2
                     if d["rejected_at"] >= t0)
    assert fb_dead == [("feedback", "f" * 24, f"feedback names an unknown threat '{'f' * 24}'"),
                       ("feedback", "junk", "malformed feedback")], fb_dead
