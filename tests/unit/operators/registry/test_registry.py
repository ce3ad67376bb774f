"""The registry's verification (every refusal says why), the slot a reader swaps, and a shard
that keeps one model for a whole activation."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.support.engines import rules_engine
from tests.support.models import model_version_dir
from twinguard.operators.detect.scoring import META_FILE, MODEL_FILE, ModelError, Scorer
from twinguard.operators.io.follow import RecordRejectedError
from twinguard.operators.registry.reader import ModelReader
from twinguard.operators.registry.slot import ModelSlot
from twinguard.operators.registry.verify import directory_files, load_record, model_path
from twinguard.operators.twin.logic import ShardLogic
from twinguard.schemas.messages import ModelRecord


def record(d: Path, version: str, **changes: object) -> ModelRecord:
    rec = ModelRecord(name="default", version=version, location=str(d), files=directory_files(d),
                      promoted_at=1)
    return msgspec.structs.replace(rec, **changes)


def reader(slot: ModelSlot) -> ModelReader:
    return ModelReader({"bootstrap.servers": "127.0.0.1:1"}, "models", "dead", slot, "default")


def test_a_verified_record_loads_its_version(tmp_path: Path) -> None:
    d = model_version_dir(tmp_path / "m", "v2")
    assert load_record(record(d, "v2")).version == "v2"
    assert load_record(record(d, "v2", location=d.as_uri())).version == "v2"


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: (d / MODEL_FILE).write_bytes(b"\0" * 8),
     r"model.ubj: sha256 .* does not match the registry record"),
    (lambda d: (d / META_FILE).unlink(), r"metadata.json listed in the registry record is missing"),
])
def test_altered_files_are_refused(tmp_path: Path, change: object, reason: str) -> None:
    d = model_version_dir(tmp_path / "m", "v2")
    rec = record(d, "v2")
    change(d)  # type: ignore[operator]
    with pytest.raises(ModelError, match=reason):
        load_record(rec)


def test_mismatched_models_are_refused(tmp_path: Path) -> None:
    d = model_version_dir(tmp_path / "m", "v2")
    with pytest.raises(ModelError, match="the record says version v9"):
        load_record(record(d, "v9"))
    with pytest.raises(ModelError, match="feature schema 0000 is not this build's"):
        load_record(record(d, "v2", feature_schema="0000"))
    other = model_version_dir(tmp_path / "o", "v3", feature_names=["a", "b"])
    with pytest.raises(ModelError, match="trained on other features"):
        load_record(record(other, "v3"))
    with pytest.raises(ModelError, match="not a readable directory"):
        load_record(record(d, "v2", location=str(tmp_path / "nowhere")))
    with pytest.raises(ModelError, match="only paths and file:// URIs"):
        model_path("s3://bucket/model")


def test_the_reader_swaps_a_good_version_and_refuses_a_bad_one(tmp_path: Path) -> None:
    slot = ModelSlot(Scorer.rules_only())
    swapped: list[str] = []
    slot.on_swap.append(lambda s: swapped.append(s.version))
    r = reader(slot)
    d = model_version_dir(tmp_path / "m", "v2")
    r.handle(b"default", msgspec.json.encode(record(d, "v2")), 5)
    assert slot.current.version == "v2" and swapped == ["v2"]
    r.handle(b"default@v2", msgspec.json.encode(record(d, "v2")), 6)  # history: not followed
    r.handle(b"other", msgspec.json.encode(record(d, "v2", name="other")), 6)  # another name
    bad = record(d, "v3")
    with pytest.raises(RecordRejectedError, match="model v3 refused, v2 keeps scoring"):
        r.handle(b"default", msgspec.json.encode(bad), 7)
    assert slot.current.version == "v2" and [x.version for x in slot.refused] == ["v3"]
    with pytest.raises(RecordRejectedError, match="malformed model record"):
        r.handle(b"default", b"{", 8)


def test_a_shard_scores_a_whole_activation_with_one_model(tmp_path: Path) -> None:
    engine = rules_engine()
    slot = ModelSlot(Scorer.rules_only())
    ctx = engine.ctx.__class__(**{**engine.ctx.__dict__, "models": slot})
    logic = ShardLogic(ctx, None)
    logic.on_batch([])
    assert logic.engine.model.version == "rules-only"
    slot.swap(Scorer.load(model_version_dir(tmp_path / "m", "v2")))
    assert logic.engine.model.version == "rules-only"  # mid-activation: still the pinned one
    logic.on_notify()
    assert logic.engine.model.version == "v2"

