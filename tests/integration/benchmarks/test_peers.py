"""Real broker: the expert peers read every message of a topic and flag exactly the windows the
naive peers' event-by-event computation flags."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fleet import Recording
from tests.support.kafka import produce
from twinguard.benchmarks.peers.columnar import reference_verdicts
from twinguard.benchmarks.peers.common import PeerModel
from twinguard.benchmarks.peers_suite import run, write_peer_spec
from twinguard.operators.io.kafka import read_topic
from twinguard.pipelines.config import Config

# low enough that the peers' partial features flag some windows of the small fleet (none at the
# shipped threshold), so that agreeing on them means something
THRESHOLD = 0.35


def test_expert_peers_process_every_event_with_the_reference_verdicts(
        unique_topics: Config, small_fleet: Recording, tmp_path: Path) -> None:
    cfg = unique_topics.replace(detection={"model_threshold": THRESHOLD})
    produce(cfg, cfg.topics.telemetry, [(m.key, m.value) for m in small_fleet.msgs])
    model = PeerModel(write_peer_spec(cfg, tmp_path / "spec.json"))
    want = reference_verdicts(model, [m.value for m in small_fleet.msgs])
    assert want

    res = run(cfg, cfg.kafka.brokers, cfg.topics.telemetry, len(small_fleet.msgs), tmp_path,
              cfg.topics.partitions, which=("bytewax_expert", "microbatch"))

    for name in ("bytewax_expert", "microbatch"):
        peer = res[name]
        assert peer.get("processed_every_event"), (name, peer, (tmp_path / f"peer-{name}.log"))
        docs = [json.loads(v) for _, v in read_topic(cfg.kafka.client_settings(), peer["threats_topic"])]
        got = {(d["device_id"], d["window_start"]): d["threat"] for d in docs}
        assert len(got) == len(docs) and got == want, name
