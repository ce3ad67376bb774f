"""--until-idle ends the whole input at once: a partition that is quiet for a while (its devices
silent, or its producer still reconnecting after a broker outage) must not end on its own and skip
what arrives on it later while the other partitions run on."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from twinguard.operators.io.kafka import IdleStop, KafkaBatchSource
from twinguard.pipelines.config import Config


def test_a_quiet_partition_does_not_end_the_run_alone(unique_topics: Config) -> None:
    settings, topic = unique_topics.kafka.client_settings(), unique_topics.topics.telemetry
    idle = IdleStop(1.0)
    source = KafkaBatchSource(settings, topic, poll_timeout_s=0.05, idle=idle)
    parts = [source.build_part("in", p, None) for p in source.list_parts()]
    producer = Producer(settings)
    sent, got, ended = [0, 0], [0, 0], set()
    late_sent = False
    t0 = time.monotonic()
    next_busy = 0.0
    while len(ended) < len(parts) and time.monotonic() - t0 < 60:
        elapsed = time.monotonic() - t0
        if elapsed < 3.0 and elapsed >= next_busy:  # partition 1 busy for 3 s
            producer.produce(topic, b"x", key=b"d1", partition=1)
            sent[1] += 1
            next_busy = elapsed + 0.2
        if elapsed >= 2.5 and not late_sent:  # partition 0 quiet for 2.5 s (> 1 s idle), then data
            for _ in range(5):
                producer.produce(topic, b"y", key=b"d0", partition=0)
            sent[0] += 5
            late_sent = True
        producer.flush(5)
        for p in parts:
            if p.partition in ended:
                continue
            try:
                got[p.partition] += sum(len(b.values) for b in p.next_batch())
            except StopIteration:
                ended.add(p.partition)
    for p in parts:
        p.close()
    assert ended == {0, 1} and idle.stopped
    assert got == sent, f"read {got} of {sent} messages per partition"
