"""The Kafka sink skips the per-batch wait for the broker only when recovery is known to be off:
under `python -m bytewax.run ... -r DIR` recovery is on without the flow seeing it."""

from __future__ import annotations

from twinguard.pipelines.config import Config
from twinguard.pipelines.flow import kafka_sink


def test_the_sink_confirms_unless_recovery_is_known_to_be_off(config: Config) -> None:
    assert kafka_sink(config).confirm
    assert kafka_sink(config, recovery=True).confirm
    assert not kafka_sink(config, recovery=False).confirm
