"""Dead-letter reasons map to bounded classes: the real decoder's reasons all have a named class."""

from __future__ import annotations

import json

from tests.support.decoding import both
from twinguard.pipelines.metrics.reasons import REASON_CLASSES, reason_class, stage_label

HOSTILE = [
    (b"d1", b""),
    (b"d1", b"{not json"),
    (b"d1", b"x" * 2_000),
    (b"d1", b'{"device_id":"d1","type":"toaster","ts":1,"seq":1,"signals":{}}'),
    (b"d1", b'{"device_id":"d1"}'),
    (b"other", b'{"device_id":"d1","type":"thermostat","ts":"2026-01-01T00:00:00Z","seq":1,'
               b'"signals":{}}'),
]


def test_every_decoder_reason_has_a_named_class() -> None:
    ref, fast = both([v for _, v in HOSTILE], [k for k, _ in HOSTILE])
    reasons = [str(json.loads(m.value)["reason"]) for m in ref.errs]
    assert ref.errs == fast.errs
    assert len(reasons) == len(HOSTILE)
    classes = [reason_class(r) for r in reasons]
    assert "other" not in classes, list(zip(classes, reasons, strict=True))
    assert len(set(classes)) >= 4


def test_reason_text_never_becomes_a_label() -> None:
    assert reason_class("signal 'temp' is not a finite number: 'NaN'") == "bad_signal"
    assert reason_class("key 'dev-9' quarantined: 100 rejects; schema: missing ts") == "quarantined"
    assert reason_class("something nobody wrote a rule for, device d-42") == "other"
    assert set(map(reason_class, ["", "x" * 10_000])) <= set(REASON_CLASSES)
    assert stage_label("decode") == "decode" and stage_label("evil\nstage") == "other"
