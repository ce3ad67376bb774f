"""Feedback in a shard: verdicts -> suppressions per scope (until their TTL), hidden threats counted
in the twin, later verdicts replacing earlier ones, benign-on-a-device re-learning its baseline;
and the records the reader refuses, each with its one-line reason."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from tests.support.devices import METER, TYPES
from twinguard.operators.detect.policy import output_id
from twinguard.operators.feedback.apply import hide_suppressed, relearn_baselines
from twinguard.operators.feedback.reader import parse_feedback
from twinguard.operators.feedback.settings import FeedbackConfig
from twinguard.operators.feedback.table import SuppressionTable
from twinguard.operators.io.follow import RecordRejectedError
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.features import THREAT_CLASSES
from twinguard.schemas.messages import Feedback

NOW = 1_800_000_000_000
DOS = THREAT_CLASSES.index("dos")
SCAN = THREAT_CLASSES.index("scan")
METER_NAME = TYPES.types[METER].name


def verdict(device: str, threat: str = "dos", verdict: str = "false_positive", scope: str = "device",
            fw: str | None = "1.0", ttl_ms: int = 60_000, we: int = NOW - 1) -> Feedback:
    tid = output_id(device, threat, "v1", str(we))
    return Feedback(threat_id=tid, verdict=verdict, analyst="a", ts=NOW, threat=threat,
                    scope=scope, ttl_ms=ttl_ms, device_id=device, device_type=METER_NAME, fw=fw,
                    model_version="v1", window_end=we)


def store_of(*devices: tuple[str, str | None]) -> TwinStore:
    st = TwinStore(len(TYPES), 5)
    st.slots_for([d for d, _ in devices], np.full(len(devices), METER))
    for s, (_, fw) in enumerate(devices):
        st.fws[s] = fw
    return st


def table_of(*fbs: Feedback, now: int = NOW) -> SuppressionTable:
    t = SuppressionTable()
    for fb in fbs:
        t.apply(fb.threat_id, fb, fb.ts + fb.ttl_ms)
    t.publish(now)
    return t


def threat_rows(n: int, cls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    meta = np.zeros((n, K.N_META), dtype=np.int64)
    meta[:, 0] = np.arange(n)
    meta[:, 2] = NOW + 10_000
    return meta, np.full(n, cls, dtype=np.int64), np.arange(n, dtype=np.int64)


@pytest.mark.parametrize(("scope", "hidden"), [("device", [0]), ("type", [0, 1, 2]),
                                                ("cohort", [0, 1])])
def test_a_scope_hides_its_class_and_the_twin_counts_it(scope: str, hidden: list[int]) -> None:
    st = store_of(("m0", "1.0"), ("m1", "1.0"), ("m2", "2.0"))
    table = table_of(verdict("m0", scope=scope))
    meta, cls, rows = threat_rows(3, DOS)
    counted: list[tuple[str, str]] = []
    kept = hide_suppressed(st, TYPES, table.current, meta, cls, rows, "v2", NOW + 1,
                           lambda c, s: counted.append((c, s)))
    assert sorted(set(range(3)) - set(kept.tolist())) == hidden
    assert counted == [("dos", scope)] * len(hidden)
    for s in hidden:
        count, tid, c, at = st.suppressed[s]
        assert (count, c, at) == (1, DOS, NOW + 10_000)
        assert tid == output_id(st.device_ids[s], "dos", "v2", str(NOW + 10_000))
        assert st.arrays["istate"][s, K.I_DIRTY] == 1


def test_other_classes_and_expired_suppressions_are_reported() -> None:
    st = store_of(("m0", "1.0"))
    table = table_of(verdict("m0", ttl_ms=60_000))
    meta, cls, rows = threat_rows(1, SCAN)
    assert hide_suppressed(st, TYPES, table.current, meta, cls, rows, "v", NOW + 1).tolist() == [0]
    meta, cls, rows = threat_rows(1, DOS)
    assert hide_suppressed(st, TYPES, table.current, meta, cls, rows, "v", NOW + 60_001).tolist() == [0]
    assert not st.suppressed


def test_a_later_verdict_on_the_same_threat_replaces_the_suppression() -> None:
    fp = verdict("m0")
    table = table_of(fp)
    assert table.current.match("m0", METER_NAME, "1.0", "dos", NOW + 1) is not None
    table.apply(fp.threat_id, msgspec.structs.replace(fp, verdict="true_positive"), NOW + 60_000)
    table.publish(NOW + 1)
    assert table.current.match("m0", METER_NAME, "1.0", "dos", NOW + 1) is None
    table.apply(fp.threat_id, fp, NOW + 60_000)
    table.apply(fp.threat_id, None)  # tombstone: the verdict withdrawn
    table.publish(NOW + 1)
    assert table.current.match("m0", METER_NAME, "1.0", "dos", NOW + 1) is None


def test_benign_on_a_device_relearns_its_baseline_once_wider_scopes_never() -> None:
    st = store_of(("m0", "1.0"), ("m1", "1.0"))
    st.arrays["istate"][:, K.I_BASE_N] = 9
    table = table_of(verdict("m0", verdict="benign"), verdict("m1", verdict="benign", scope="type",
                                                              threat="scan"))
    assert relearn_baselines(st, table.current) == 1
    assert st.arrays["istate"][:2, K.I_BASE_N].tolist() == [0, 9]
    st.arrays["istate"][0, K.I_BASE_N] = 4  # learning again since
    assert relearn_baselines(st, table.current) == 0  # the same verdict is applied once
    assert st.arrays["istate"][0, K.I_BASE_N] == 4
    snap = st.snapshot()  # a restored shard remembers it too
    assert relearn_baselines(snap, table.current) == 0
    fp_only = table_of(verdict("m0"))
    assert relearn_baselines(store_of(("m0", "1.0")), fp_only.current) == 0


def test_the_reader_accepts_a_verdict_and_its_ttl() -> None:
    fb = verdict("m0", ttl_ms=0)
    got, until = parse_feedback(fb.threat_id.encode(), msgspec.json.encode(fb), FeedbackConfig())
    assert got == fb and until == NOW + 86_400_000  # [feedback] default_ttl_s


@pytest.mark.parametrize(("change", "reason"), [
    ({"threat_id": "0" * 24}, "feedback names an unknown threat '000000000000000000000000'"),
    ({"window_end": None}, "names an unknown threat: device_id, threat, model_version"),
    ({"threat": "weather"}, "unknown threat class 'weather'"),
    ({"scope": "cohort", "fw": None}, "scope cohort needs the device's fw"),
    ({"ttl_ms": 40 * 86_400_000}, "exceeds [feedback] max_ttl_s"),
])
def test_the_reader_refuses_with_a_reason(change: dict[str, object], reason: str) -> None:
    fb = msgspec.structs.replace(verdict("m0"), **change)
    with pytest.raises(RecordRejectedError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_feedback(None, msgspec.json.encode(fb), FeedbackConfig())


def test_malformed_and_mis_keyed_feedback_is_refused() -> None:
    with pytest.raises(RecordRejectedError, match="malformed feedback"):
        parse_feedback(b"k", b"{not json", FeedbackConfig())
    with pytest.raises(RecordRejectedError, match="malformed feedback"):
        parse_feedback(b"k", b'{"threat_id": "x", "verdict": "maybe", "analyst": "a", "ts": 1}',
                       FeedbackConfig())
    fb = verdict("m0")
    with pytest.raises(RecordRejectedError, match="is not its threat_id"):
        parse_feedback(b"other", msgspec.json.encode(fb), FeedbackConfig())
