"""Expert peer (a): a Bytewax dataflow written the way an expert would, items handled in batches.

stock `KafkaSource` (tail=False, `batch_size` 10,000) -> `key_on` the source partition (devices are
partition-affine: telemetry is keyed by device) -> `stateful_batch`, whose logic keeps one partition's
open windows as polars aggregates: each batch is parsed in one Arrow JSON read, folded with one
`group_by`, and the windows it closes are scored with one `inplace_predict` -> threats -> stock
`KafkaSink`. One worker, recovery off, Bytewax's default epoch.

    python benchmarks/peers/bytewax_expert.py --spec F --brokers B --topic T --out-topic O --stats F
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

# sibling modules: peers run as scripts (by path), independent of twinguard
from columnar import WindowBook
from common import PeerModel, Progress, peer_arguments, warm_model

BATCH = 10_000
Msg = KafkaSourceMessage[bytes | None, bytes | None]


class PartitionWindows(StatefulBatchLogic[Msg, bytes, None]):
    """One Kafka partition's open windows; emits the threat records of the windows each batch closes."""

    def __init__(self, model: PeerModel, progress: Progress) -> None:
        self.book = WindowBook(model)
        self.progress = progress

    def on_batch(self, values: list[Msg]) -> tuple[list[bytes], bool]:
        self.progress.seen()
        out = self.book.verdicts(self.book.add([m.value for m in values if m.value is not None]))
        self.progress.done(len(values))
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[bytes], bool]:
        out = self.book.verdicts(self.book.close(final=True))
        self.progress.done(0)
        return out, StatefulBatchLogic.DISCARD

    def snapshot(self) -> None:
        return None  # recovery is off in this benchmark, as for the other peers


def build(model: PeerModel, brokers: str, topic: str, out_topic: str,
          progress: Progress) -> Dataflow:
    flow = Dataflow("bytewax_expert_peer")
    msgs = op.input("kafka_in", flow,
                    KafkaSource(brokers.split(","), [topic], tail=False, batch_size=BATCH))
    keyed = op.key_on("by_partition", msgs, lambda m: str(m.partition))
    threats = op.stateful_batch("windows", keyed, lambda _: PartitionWindows(model, progress))

    def to_message(kv: tuple[str, bytes]) -> KafkaSinkMessage[Any, Any]:
        return KafkaSinkMessage(None, kv[1])

    op.output("kafka_out", op.map("to_message", threats, to_message),
              KafkaSink(brokers.split(","), out_topic))
    return flow


def main() -> None:
    from bytewax._bytewax import cli_main

    a = peer_arguments(__doc__)
    model = warm_model(a.spec)
    progress = Progress()
    cli_main(build(model, a.brokers, a.topic, a.out_topic, progress),  # type: ignore[no-untyped-call]
             workers_per_process=1, epoch_interval=timedelta(seconds=10))
    from importlib.metadata import version

    progress.write(a.stats, framework="bytewax", version=version("bytewax"))


if __name__ == "__main__":
    main()
