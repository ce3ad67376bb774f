"""`twinguard feedback`'s TTL syntax and the line it prints; the registry record a model directory
gets from `twinguard model promote`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.models import model_version_dir
from twinguard.operators.detect.scoring import MODEL_FILE, ModelError
from twinguard.pipelines.adapt.feedback_command import describe, parse_ttl
from twinguard.pipelines.adapt.model_command import record_for
from twinguard.schemas.features import FEATURE_SCHEMA
from twinguard.schemas.messages import Feedback


@pytest.mark.parametrize(("text", "ms"), [("90s", 90_000), ("15m", 900_000), ("12h", 43_200_000),
                                          ("7d", 604_800_000), ("30", 30_000), ("1.5h", 5_400_000)])
def test_ttl_durations(text: str, ms: int) -> None:
    assert parse_ttl(text) == ms


@pytest.mark.parametrize("text", ["", "0", "-5m", "1w", "soon"])
def test_bad_ttls_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive duration such as 90s"):
        parse_ttl(text)


def fb(verdict: str, scope: str) -> Feedback:
    return Feedback(threat_id="t1", verdict=verdict, analyst="a", ts=1_800_000_000_000,
                    threat="exfiltration", scope=scope, ttl_ms=3_600_000, device_id="cam-1",
                    device_type="ip_camera", fw="5.55.1", model_version="v", window_end=1)


def test_the_printed_line_says_what_the_verdict_does() -> None:
    assert describe(fb("false_positive", "cohort")) == (
        "feedback on t1: false_positive: exfiltration suppressed for cohort ip_camera|5.55.1 until "
        "2027-01-15T09:00:00Z")
    assert describe(fb("benign", "device")).endswith(
        "until 2027-01-15T09:00:00Z; the device's baseline is re-learned from its next window")
    assert describe(fb("true_positive", "type")) == (
        "feedback on t1: true_positive recorded (exfiltration on cam-1)")


def test_a_promoted_directory_is_verified_and_every_file_hashed(tmp_path: Path) -> None:
    d = model_version_dir(tmp_path / "m", "v5")
    rec = record_for(d, "default", "why")
    assert (rec.name, rec.version, rec.location, rec.feature_schema, rec.note) == (
        "default", "v5", str(d.resolve()), FEATURE_SCHEMA, "why")
    assert set(rec.files) == {"metadata.json", "model.ubj"}
    (d / MODEL_FILE).write_bytes(b"\0")
    with pytest.raises(ModelError, match="does not match"):
        record_for(d, "default")
