"""The expert peers' batch engine gives the naive peers' verdicts: same windows, same classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.support.fleet import Recording
from twinguard.benchmarks.peers.columnar import WindowBook, reference_verdicts
from twinguard.benchmarks.peers.common import PeerModel, State
from twinguard.benchmarks.peers_suite import write_peer_spec
from twinguard.pipelines.config import Config


@pytest.fixture(scope="module")
def model(config: Config, tmp_path_factory: pytest.TempPathFactory) -> PeerModel:
    """The peers' model with a threshold low enough to flag windows of the small fleet: with the
    peers' partial features the shipped threshold flags none, and an equality of empty sets proves
    nothing (the scores are compared in full below as well)."""
    m = PeerModel(write_peer_spec(config, tmp_path_factory.mktemp("peer") / "spec.json"))
    m.threshold = 0.35
    return m


def verdicts(book: WindowBook, batches: list[list[bytes]]) -> dict[tuple[str, int], str]:
    records = [r for b in batches for r in book.verdicts(book.add(b))]
    records += book.verdicts(book.close(final=True))
    docs = [json.loads(r) for r in records]
    out = {(d["device_id"], d["window_start"]): d["threat"] for d in docs}
    assert len(out) == len(docs), "a window was judged twice"
    return out


@pytest.mark.parametrize("batch", [1, 97, 5000])
def test_batched_windows_match_the_event_by_event_reference(model: PeerModel, small_fleet: Recording,
                                                            batch: int) -> None:
    values = [m.value for m in small_fleet.msgs]
    want = reference_verdicts(model, values)
    assert 5 <= len(want) < 200  # some windows flagged, not all (240 windows)
    book = WindowBook(model)
    got = verdicts(book, [values[k:k + batch] for k in range(0, len(values), batch)])
    assert got == want
    assert book.events == len(values)


def test_every_window_gets_the_reference_features(model: PeerModel, small_fleet: Recording) -> None:
    values = [m.value for m in small_fleet.msgs]
    final: dict[tuple[str, int], np.ndarray] = {}
    state: dict[str, State] = {}
    for v in values:
        ev = json.loads(v)
        st = state[ev["device_id"]] = model.update(state.get(ev["device_id"]), ev)
        final[(ev["device_id"], st["ws"])] = model.features(st)[0]
    book = WindowBook(model)
    closed = pl.concat([book.add(values[:1500]), book.add(values[1500:]), book.close(final=True)])
    x = book.features(closed)
    assert closed.height == len(final)
    for i, key in enumerate(zip(closed["device_id"], closed["ws"], strict=True)):
        np.testing.assert_allclose(x[i], final[key], rtol=1e-6, equal_nan=True, err_msg=str(key))


def test_a_window_closes_once_its_device_moves_on(model: PeerModel, small_fleet: Recording) -> None:
    msgs = small_fleet.of(small_fleet.msgs[0].ev.device_id)
    book = WindowBook(model)
    first = [m.value for m in msgs if m.ev.ts < msgs[0].ev.ts - msgs[0].ev.ts % 10_000 + 10_000]
    assert book.add(first).height == 0  # its first window is still open
    later = next(m for m in msgs if m.ev.ts >= msgs[0].ev.ts - msgs[0].ev.ts % 10_000 + 10_000)
    closed = book.add([later.value])
    assert closed.height == 1 and closed["n"].item() == len(first)


def test_unknown_fields_and_missing_groups_are_tolerated(model: PeerModel, tmp_path: Path) -> None:
    ev = {"device_id": "thermostat-1", "type": "thermostat", "ts": 1_000, "seq": 1, "sig": "x",
          "signals": {"temperature_c": 20.0, "not_a_signal": 3.0}, "extra": {"deep": [1, 2]}}
    book = WindowBook(model)
    book.add([json.dumps(ev).encode()])
    closed = book.close(final=True)
    assert closed.height == 1 and closed["n"].item() == 1
    assert book.features(closed).shape == (1, len(model.names))
