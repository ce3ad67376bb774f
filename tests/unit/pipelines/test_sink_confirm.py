"""The Kafka sink skips the per-batch wait for the broker only when recovery is known to be off:
under `python -m bytewax.run ... -r DIR` recovery is on without the flow seeing it."""

from __future__ import annotations

from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import kafka_sink


def test_the_sink_confirms_unless_recovery_is_known_to_be_off() -> None:
    cfg = load_config(env={})
    assert kafka_sink(cfg).confirm
    assert kafka_sink(cfg, recovery=True).confirm
    assert not kafka_sink(cfg, recovery=False).confirm
