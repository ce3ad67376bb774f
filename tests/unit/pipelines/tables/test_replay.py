"""`twinguard replay` / `train TABLE`: generated CSV and parquet tables through the serving engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.support.tables import write_table
from twinguard.operators.detect import multivariate as MV
from twinguard.operators.detect.scoring import ModelError
from twinguard.pipelines.cli import main
from twinguard.pipelines.config import Config
from twinguard.pipelines.tables.model import BASELINES_FILE, load_table_model
from twinguard.pipelines.tables.read import Table, TableError, TableOptions, read_table
from twinguard.pipelines.tables.replay import (
    DEFAULT_TABLE_FA_RATE,
    DEFAULT_WARMUP_ROWS,
    ReplayError,
    ReplayOptions,
    replay_table,
)

HOUR_S = 3600
T0_S = 1_600_000_000
# quiet windows a multivariate alarm is held through before it clears (one incident, one alarm)
HELD = MV.CLEAR_AFTER - 1


def sinusoid_table(n: int, k: int, seed: int, step_at: int | None = None, step_signal: int = 0,
                   step: float = 0.0) -> pl.DataFrame:
    """Hourly rows, k signals = daily sinusoid + noise; rows from step_at on for 4 rows get +step."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n)
    x = np.column_stack([20 + 2 * np.sin(2 * np.pi * hours / 24 + j) + rng.normal(0, 0.3, n)
                         for j in range(k)])
    label = np.zeros(n, dtype=np.int64)
    if step_at is not None:
        x[step_at:step_at + 4, step_signal] += step
        label[step_at:step_at + 4] = 1
    cols = {f"tag_{j}": x[:, j] for j in range(k)}
    return pl.DataFrame({"timestamp": T0_S + hours * HOUR_S, **cols, "attack": label})


def replay_cli(tmp_path: Path, table: Path, *extra: str, out: str = "pred.csv") -> pl.DataFrame:
    dest = tmp_path / out
    rc = main(["replay", str(table), "--label-col", "attack", *extra, "--out", str(dest)])
    assert rc == 0
    return pl.read_parquet(dest) if dest.suffix == ".parquet" else pl.read_csv(dest)


@pytest.mark.parametrize(("suffix", "k", "step_signal"), [
    (".csv", 2, 1), (".parquet", 2, 0), (".csv", 9, 7), (".parquet", 43, 40)])
def test_step_after_warmup_is_flagged_as_anomaly(tmp_path: Path, suffix: str, k: int,
                                                  step_signal: int) -> None:
    """A 4-row step of ~30 noise sigmas on one signal (beyond the per-signal feature columns
    for wide tables) is flagged `anomaly`, and nothing else is: the step's rows and the quiet windows
    the multivariate alarm is held through before it clears (hysteresis, multivariate.CLEAR_AFTER)."""
    df = sinusoid_table(600, k, seed=k, step_at=400, step_signal=step_signal, step=25.0)
    pred = replay_cli(tmp_path, write_table(df, tmp_path / f"t{suffix}"), out=f"p{suffix}")
    flagged = pred.filter(pl.col("flag") == 1)
    assert 400 in flagged["row"].to_list()
    assert set(flagged["threat"].to_list()) == {"anomaly"}
    assert set(flagged["row"].to_list()) <= set(range(400, 404 + HELD))
    assert pred["score"][400] >= 0.5


def test_clean_sinusoid_raises_no_flags_after_warmup(tmp_path: Path) -> None:
    df = sinusoid_table(3000, 6, seed=11)
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "clean.csv"))
    assert pred["flag"].sum() == 0
    after = pred["score"][DEFAULT_WARMUP_ROWS:]
    assert after.max() > 0.0  # a continuous score
    # single windows just over the multivariate model's calibrated limits are expected at about
    # its target rate; only two in a row raise an alarm
    assert (after >= 0.5).mean() <= DEFAULT_TABLE_FA_RATE
    assert after.max() < 0.6


def test_rows_keep_input_order_and_count(tmp_path: Path) -> None:
    """Shuffled input: one output row per input row, in input order, times untouched."""
    df = sinusoid_table(500, 3, seed=3, step_at=300, step=25.0)
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=5)
    pred = replay_cli(tmp_path, write_table(shuffled, tmp_path / "shuffled.csv"))
    assert pred.height == shuffled.height
    assert pred["row"].to_list() == list(range(shuffled.height))
    assert pred["time"].to_list() == (shuffled["timestamp"] * 1000).to_list()
    assert pred["label"].to_list() == ["anomaly" if a else "normal" for a in shuffled["attack"]]
    flagged_times = pred.filter(pl.col("flag") == 1)["time"].to_list()
    assert (T0_S + 300 * HOUR_S) * 1000 in flagged_times


def test_devices_are_judged_separately(tmp_path: Path) -> None:
    parts = []
    for d in range(3):
        part = sinusoid_table(400, 2, seed=20 + d, step_at=250 if d == 1 else None, step=25.0)
        parts.append(part.with_columns(pl.lit(f"plc-{d}").alias("unit")))
    df = pl.concat(parts).sort("timestamp")
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "fleet.csv"), "--device-col", "unit")
    flagged = pred.filter(pl.col("flag") == 1)
    assert flagged.height > 0
    assert set(flagged["device"].to_list()) == {"plc-1"}


def test_warmup_rows_are_learning_only(tmp_path: Path) -> None:
    df = sinusoid_table(300, 2, seed=4, step_at=50, step=25.0)
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "early.csv"), "--warmup-rows", "80")
    assert pred["flag"][:80].sum() == 0
    assert pred["score"][:80].max() == 0.0


def test_train_on_normal_table_then_replay_flags_from_the_first_rows(tmp_path: Path) -> None:
    train = write_table(sinusoid_table(1500, 4, seed=8), tmp_path / "normal.csv")
    model = tmp_path / "model"
    assert main(["train", str(train), "--device", "site", "--signals",
                 "tag_0,tag_1,tag_2,tag_3", "--out", str(model)]) == 0
    meta = json.loads((model / "metadata.json").read_text())
    assert set(meta["files"]) == {BASELINES_FILE}
    assert meta["data"]["multivariate"]["devices_live"] == 1  # learned from all 1,500 windows
    assert load_table_model(model).baselines.mv["mv_i"].shape[0] == 1  # saved and verified
    test = sinusoid_table(200, 4, seed=9, step_at=30, step=25.0)
    test = test.with_columns(pl.col("timestamp") + 1512 * HOUR_S)  # whole weeks: same daily phase
    path = write_table(test, tmp_path / "test.csv")
    cold = replay_cli(tmp_path, path, "--device", "site", out="cold.csv")
    warm = replay_cli(tmp_path, path, "--device", "site", "--model", str(model), out="warm.csv")
    assert cold["flag"][:DEFAULT_WARMUP_ROWS].sum() == 0  # still learning
    # the step is flagged from its first row; learning absorbs a lasting step within a few rows
    assert warm.filter(pl.col("flag") == 1)["row"].to_list()[:2] == [30, 31]
    assert set(warm.filter(pl.col("flag") == 1)["row"].to_list()) <= set(range(30, 34 + HELD))
    assert set(warm.filter(pl.col("flag") == 1)["threat"].to_list()) == {"anomaly"}


def test_train_with_attack_labels_writes_a_verified_classifier(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    df = sinusoid_table(2500, 3, seed=12)
    starts = rng.choice(np.arange(200, 2400, 40), size=30, replace=False)
    x = df["tag_2"].to_numpy().copy()
    label = np.array(["normal"] * df.height, dtype=object)
    for s in starts:
        x[s:s + 3] += 25.0
        label[s:s + 3] = "ddos"
    df = df.with_columns(pl.Series("tag_2", x), pl.Series("kind", label.tolist())).drop("attack")
    model = tmp_path / "model"
    assert main(["train", str(write_table(df, tmp_path / "lab.csv")), "--label-col", "kind",
                 "--out", str(model)]) == 0
    meta = json.loads((model / "metadata.json").read_text())
    assert set(meta["files"]) == {BASELINES_FILE, "model.ubj"}
    assert meta["data"]["class_counts"]["dos"] > 0  # "ddos" is an alias of our `dos`
    loaded = load_table_model(model)
    assert loaded.scorer is not None and loaded.baselines is not None
    (model / BASELINES_FILE).write_bytes((model / BASELINES_FILE).read_bytes() + b"x")
    with pytest.raises(ModelError, match="altered"):
        load_table_model(model)


def test_model_for_other_signals_is_refused(tmp_path: Path, config: Config) -> None:
    model = tmp_path / "model"
    train = write_table(sinusoid_table(400, 3, seed=1), tmp_path / "a.csv")
    assert main(["train", str(train), "--label-col", "attack", "--out", str(model)]) == 0
    other = write_table(sinusoid_table(100, 2, seed=2), tmp_path / "a2.csv")
    table = read_table(other, TableOptions(None, label_col="attack", device="a"))
    with pytest.raises(ModelError, match="signals"):
        replay_table(table, config, ReplayOptions(progress=False),
                     baselines=load_table_model(model).baselines)


def test_bad_input_gets_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit code 2 and a message naming what is wrong (wording belongs to pipelines/tables/read.py)."""
    good = write_table(sinusoid_table(50, 2, seed=1), tmp_path / "g.csv")
    out = str(tmp_path / "o.csv")
    cases = {
        ("--signals", "tag_0,nope"): "nope",
        ("--time-col", "when"): "when",
        ("--time-col", "tag_0", "--time-format", "%Y-%m-%d"): "time",
    }
    for extra, named in cases.items():
        assert main(["replay", str(good), *extra, "--out", out]) == 2
        assert named in capsys.readouterr().err.lower()
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,v\n")
    assert main(["replay", str(empty), "--out", out]) == 2
    assert "empty.csv" in capsys.readouterr().err
    assert main(["replay", str(good), "--out", str(tmp_path / "o.json")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    assert main(["train", str(good)]) == 2
    assert "--out" in capsys.readouterr().err


def test_replay_uses_the_table_arrays_directly(config: Config) -> None:
    """A Table built in memory (no file): verdicts line up with its rows."""
    n = 400
    rng = np.random.default_rng(0)
    sig = 5 + rng.normal(0, 0.2, (n, 5))
    sig[300, 4] = 30.0
    sig[310, 2] = np.nan  # a missing reading is skipped, not a deviation
    sig[320, 1] = np.inf  # nor is a non-finite one
    table = Table("memory", (T0_S + np.arange(n) * 60) * 1000, ["m"] * n,
                  tuple(f"s{j}" for j in range(5)), sig, None)
    res = replay_table(table, config, ReplayOptions(progress=False))
    assert res.rows == n and res.window_ms == 60_000
    assert np.nonzero(res.flag)[0].tolist() == list(range(300, 301 + HELD))
    assert np.isfinite(res.score).all() and res.score.max() <= 1.0
    early = Table("memory", table.time_ms - T0_S * 2000, table.devices, table.signal_names, sig,
                  None)
    with pytest.raises(ReplayError, match="before 1970"):
        replay_table(early, config, ReplayOptions(progress=False))
    with pytest.raises(TableError, match="missing.csv"):
        read_table(Path(__file__).parent / "missing.csv", TableOptions(None))


def test_bursty_event_times_are_not_a_flood(tmp_path: Path) -> None:
    """Irregular (Poisson) event times: the nominal rate is learned from the bursts seen while
    learning, so ordinary bursts are not called `dos` and nothing is flagged."""
    rng = np.random.default_rng(6)
    n = 6000
    t = T0_S * 1000 + np.cumsum(rng.exponential(20_000, n)).astype(np.int64)
    df = pl.DataFrame({"ts_ms": t, "unit": [f"u{i}" for i in rng.integers(0, 3, n)],
                       "value": rng.normal(50, 2, n), "attack": np.zeros(n, dtype=np.int64)})
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "events.parquet"), "--time-col", "ts_ms",
                      "--device-col", "unit", out="events.parquet")
    assert pred["flag"].sum() == 0


def test_deltas_find_a_spike_the_cycle_hides(tmp_path: Path) -> None:
    """A one-row spike of ~2.5 cycle sigmas: invisible to level baselines, obvious as a change;
    a model trained with --deltas makes replay use them too. The multivariate model sees it even
    without deltas: the three tags' learned phase relationship breaks."""
    df = sinusoid_table(1200, 3, seed=13)
    x = df["tag_1"].to_numpy().copy()
    x[900] += 5.0
    df = df.with_columns(pl.Series("tag_1", x))
    path = write_table(df, tmp_path / "cycle.csv")
    assert replay_cli(tmp_path, path, out="level.csv")["flag"][900] == 1
    with_deltas = replay_cli(tmp_path, path, "--deltas", out="deltas.csv")
    assert with_deltas["flag"][900] == 1 and with_deltas["threat"][900] == "anomaly"
    model = tmp_path / "model"
    assert main(["train", str(write_table(sinusoid_table(800, 3, seed=14), tmp_path / "n.csv")),
                 "--device", "cycle", "--label-col", "attack", "--deltas", "--out", str(model)]) == 0
    later = df.with_columns(pl.col("timestamp") + 800 * HOUR_S)
    warm = replay_cli(tmp_path, write_table(later, tmp_path / "later.csv"), "--device", "cycle",
                      "--model", str(model), out="warm.csv")
    assert warm["flag"][900] == 1


def test_every_row_of_a_flagged_window_is_flagged(tmp_path: Path) -> None:
    """--window 7200 on hourly rows: two rows per window, a spike on the second flags both."""
    df = sinusoid_table(800, 2, seed=15)
    x = df["tag_0"].to_numpy().copy()
    window = (T0_S + np.arange(800) * HOUR_S) // 7200
    start = int(np.nonzero(np.diff(window) == 0)[0][300])  # first row of a two-row window
    x[start + 1] += 60.0
    df = df.with_columns(pl.Series("tag_0", x))
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "pairs.csv"), "--window", "7200")
    # the window's two rows, then the HELD two-row windows the alarm is held through
    assert pred.filter(pl.col("flag") == 1)["row"].to_list() == list(range(start, start + 2 + 2 * HELD))
    assert pred["score"][start] == pred["score"][start + 1] >= 0.5


def test_a_long_learning_period_still_ends(tmp_path: Path) -> None:
    """A learning period longer than the engine's 100-window warm-up scale (kernels.BASE_N_CAP)."""
    df = sinusoid_table(3000, 2, seed=16, step_at=2600, step=25.0)
    pred = replay_cli(tmp_path, write_table(df, tmp_path / "long.csv"), "--warmup-rows", "2000")
    assert pred["flag"][:2000].sum() == 0
    assert pred["flag"][2600] == 1


def test_train_learns_from_several_tables(tmp_path: Path) -> None:
    """Baselines carry over from table to table; each file's devices keep theirs."""
    a = write_table(sinusoid_table(300, 2, seed=17), tmp_path / "site_a.csv")
    b = write_table(sinusoid_table(300, 2, seed=18).with_columns(pl.col("timestamp") + 300 * HOUR_S),
              tmp_path / "site_b.parquet")
    model = tmp_path / "model"
    assert main(["train", str(a), str(b), "--label-col", "attack", "--out", str(model)]) == 0
    baselines = load_table_model(model).baselines
    assert baselines is not None and set(baselines.device_ids) == {"site_a", "site_b"}
    assert baselines.base_n.min() > 100


def test_time_context_learned_by_train_judges_the_daily_phase_in_replay(tmp_path: Path) -> None:
    """`train --time-context auto` on 62 days of daily cycles; `replay --model` (no flag: as train
    ran) accepts the cycle at its usual hours and flags the same cycle shifted by 12 hours."""
    train = write_table(sinusoid_table(1500, 4, seed=8), tmp_path / "normal.csv")
    model = tmp_path / "model"
    assert main(["train", str(train), "--device", "site", "--signals", "tag_0,tag_1,tag_2,tag_3",
                 "--time-context", "auto", "--out", str(model)]) == 0
    assert json.loads((model / "metadata.json").read_text())["data"]["multivariate"]["time_context"]
    flagged = {}
    for name, hours in (("usual", 1512), ("shifted", 1500)):
        test = sinusoid_table(200, 4, seed=9).with_columns(pl.col("timestamp") + hours * HOUR_S)
        pred = replay_cli(tmp_path, write_table(test, tmp_path / f"{name}.csv"), "--device", "site",
                          "--model", str(model), out=f"{name}_pred.csv")
        flagged[name] = int(pred["flag"].sum())
    assert flagged["usual"] == 0
    assert flagged["shifted"] > 100
