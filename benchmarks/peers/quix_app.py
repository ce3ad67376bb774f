"""Peer (b): a Quix Streams application, the way Quix's docs teach.

Application + StreamingDataFrame over the input topic (JSON values, string keys = device id) ->
`apply(..., stateful=True)` per event (the per-key State store, RocksDB) holding the same 10 s
tumbling-window features -> 1-row XGBoost predict -> filter threats -> `to_topic`. Changelog topics
are off, matching twinguard and the Bytewax peer, which both run with recovery off. Stops after
`--idle` seconds without new messages (Application.run(timeout=...)).

Runs from its own virtualenv (quixstreams pins confluent-kafka < 2.13):
    <quix-venv>/bin/python -m twinguard.benchmarks.peers.quix_app --spec F --brokers B --topic T ...
"""

from __future__ import annotations

import json
import tempfile
import uuid
from typing import Any

# a sibling module: peers run as scripts (by path), independent of twinguard
from common import Progress, peer_arguments, warm_model


def main() -> None:
    from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]

    a = peer_arguments(__doc__, idle=True)
    model = warm_model(a.spec)
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(broker_address=a.brokers, consumer_group=f"bench-quix-{uuid.uuid4()}",
                          auto_offset_reset="earliest", state_dir=state_dir,
                          use_changelog_topics=False, loglevel="WARNING")
        topic_in = app.topic(a.topic, value_deserializer="json", key_deserializer="str")
        topic_out = app.topic(a.out_topic, value_serializer="bytes", key_serializer="str")
        sdf = app.dataframe(topic_in)

        def features(ev: dict[str, Any], state: Any) -> bytes | None:
            progress.seen()
            st, out = model.step(state.get("window"), ev)
            state.set("window", st)
            progress.done()
            return out

        sdf = sdf.apply(features, stateful=True)
        sdf = sdf.filter(lambda v: v is not None)
        sdf.to_topic(topic_out)
        app.run(timeout=a.idle, collect=False)
    import quixstreams

    progress.write(a.stats, framework="quixstreams", version=quixstreams.__version__,
                   settings={"use_changelog_topics": False, "processing_guarantee":
                             "at-least-once (default)", "stateful": "apply(stateful=True)"})
    print(json.dumps({"processed": progress.count}))


if __name__ == "__main__":
    main()
