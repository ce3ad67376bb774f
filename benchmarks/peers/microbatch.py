"""Expert peer (b): a micro-batch consumer, as a data engineer writes one without a stream framework.

confluent-kafka `consume(10000)` -> one Arrow JSON read per batch -> per-(device, 10 s window)
aggregates with one `group_by` -> a device's window closes when it reports in a later one -> one
`inplace_predict` per batch of closed windows -> threats produced. Offsets from the beginning, ends
when every partition reports its end (`enable.partition.eof`).

    python benchmarks/peers/microbatch.py --spec F --brokers B --topic T --out-topic O --stats F
"""

from __future__ import annotations

# columnar, common: sibling modules (peers run as scripts, by path, independent of twinguard)
from columnar import WindowBook
from common import PeerModel, Progress, peer_arguments, warm_model
from confluent_kafka import Consumer, KafkaError, Producer

BATCH = 10_000


def run(model: PeerModel, brokers: str, topic: str, out_topic: str, progress: Progress) -> int:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"peer-microbatch-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 20})
    consumer.subscribe([topic])
    parts = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    book = WindowBook(model)
    at_end: set[int] = set()
    threats = 0

    def emit(records: list[bytes]) -> None:
        nonlocal threats
        for r in records:
            producer.produce(out_topic, r)
        producer.poll(0)
        threats += len(records)

    while len(at_end) < parts:
        msgs = consumer.consume(BATCH, timeout=1.0)
        values = []
        for m in msgs:
            err = m.error()
            if err is None:
                values.append(m.value())
                at_end.discard(m.partition())
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
            else:
                raise RuntimeError(f"consume failed: {err}")
        if values:
            progress.seen()
            emit(book.verdicts(book.add(values)))
            progress.done(len(values))
    emit(book.verdicts(book.close(final=True)))
    progress.done(0)  # the last windows' verdicts are part of the work
    producer.flush(30)
    consumer.close()
    return threats


def main() -> None:
    a = peer_arguments(__doc__)
    model = warm_model(a.spec)
    progress = Progress()
    threats = run(model, a.brokers, a.topic, a.out_topic, progress)
    from importlib.metadata import version

    progress.write(a.stats, framework="confluent-kafka+polars", version=version("polars"),
                   threats_emitted=threats)


if __name__ == "__main__":
    main()
