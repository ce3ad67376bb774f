"""The local broker's cluster ids are accepted by Kafka's storage tool (no leading '-')."""

from __future__ import annotations

import base64

from twinguard.pipelines.kafka.local import new_cluster_id


def test_cluster_ids_are_16_byte_ids_that_never_look_like_an_option() -> None:
    ids = [new_cluster_id() for _ in range(5000)]  # ~78 would start with '-' if unfiltered
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
