"""Peer (a): a straightforward Bytewax dataflow, the way Bytewax's docs and examples teach.

stock `bytewax.connectors.kafka.KafkaSource` (tail=False: ends at the partitions' ends) -> json.loads
per message -> `key_on` device -> `stateful_map` per event (features in 10 s tumbling windows,
1-row XGBoost predict) -> threats -> stock `KafkaSink`. One worker, recovery off, Bytewax's default
epoch (10 s, as `python -m bytewax.run` uses without -s).

    python -m twinguard.benchmarks.peers.bytewax_naive --spec F --brokers B --topic T --out-topic O --stats F
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow

# a sibling module: peers run as scripts (by path), independent of twinguard
from common import PeerModel, Progress, State, peer_arguments, warm_model


def build(model: PeerModel, brokers: str, topic: str, out_topic: str,
          progress: Progress) -> Dataflow:
    flow = Dataflow("bytewax_naive_peer")
    msgs = op.input("kafka_in", flow, KafkaSource(brokers.split(","), [topic], tail=False))

    def deserialize(msg: Any) -> dict[str, Any]:
        progress.seen()
        ev: dict[str, Any] = json.loads(msg.value)
        return ev

    events = op.map("deserialize", msgs, deserialize)
    keyed = op.key_on("by_device", events, lambda ev: str(ev["device_id"]))

    def features(st: State | None, ev: dict[str, Any]) -> tuple[State, bytes | None]:
        out = model.step(st, ev)
        progress.done()
        return out

    scored = op.stateful_map("features_and_score", keyed, features)
    def to_message(kv: tuple[str, bytes | None]
                   ) -> KafkaSinkMessage[bytes | None, bytes | None] | None:
        return None if kv[1] is None else KafkaSinkMessage(kv[0].encode(), kv[1])

    threats = op.filter_map("threats", scored, to_message)
    op.output("kafka_out", threats, KafkaSink(brokers.split(","), out_topic))
    return flow


def main() -> None:
    from bytewax._bytewax import cli_main

    a = peer_arguments(__doc__)
    model = warm_model(a.spec)
    progress = Progress()
    flow = build(model, a.brokers, a.topic, a.out_topic, progress)
    cli_main(flow, workers_per_process=1,  # type: ignore[no-untyped-call]
             epoch_interval=timedelta(seconds=10))
    from importlib.metadata import version

    progress.write(a.stats, framework="bytewax", version=version("bytewax"))


if __name__ == "__main__":
    main()
