"""Real broker, real `twinguard cluster`: 3 processes x 2 workers over 12 partitions against one
process; a SIGKILLed member; rescaling 3 -> 2 -> 4 on one recovery store. Every input message is
accounted for, re-emitted threats keep their ids, and the threat ids are those of one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import twinguard
from tests.support.cluster import (
    audit,
    cluster_command,
    cluster_state,
    cluster_topics,
    committed_epoch,
    finish,
    fleet_messages,
    fresh_outputs,
    output_count,
    run_cluster,
    send,
    start_cluster,
    summary,
    wait_for,
    write_cluster_config,
)
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.local import free_port

PARTITIONS = 12
DEVICES, SECONDS, SEED = 60, 60.0, 5


@pytest.fixture
def twelve(kafka_brokers: str, config: Config) -> Config:
    """Input topics with 12 partitions."""
    return cluster_topics(config, kafka_brokers, PARTITIONS)


def _reference(cfg: Config, tmp_path: Path) -> dict[str, object]:
    """One process over the same input, no recovery: the accounting and threat ids to match."""
    ref = fresh_outputs(cfg, "single")
    conf = write_cluster_config(ref, tmp_path / "single.toml")
    done = twinguard("--config", str(conf), "run", "--until-idle", "3", "--insecure-dev-key")
    assert done.returncode == 0, done.stderr[-3000:]
    return audit(ref)


def _accounted(report: dict[str, object], sent: int) -> None:
    print(summary(report))  # the accounting, shown with `pytest -s`
    assert report["events_in"] == sent, summary(report)
    assert report["lost"] == 0, summary(report)
    assert report["duplicates_with_same_id"] == report["duplicates"], summary(report)
    assert not report["ids_with_conflicting_content"], summary(report)


def test_three_processes_match_one(twelve: Config, tmp_path: Path) -> None:
    messages = fleet_messages(DEVICES, SECONDS, SEED)
    send(twelve, messages)
    ref = _reference(twelve, tmp_path)
    _accounted(ref, len(messages))

    cfg = fresh_outputs(twelve, "three")
    conf = write_cluster_config(cfg, tmp_path / "three.toml")
    run_cluster(cluster_command(conf, 3, 2, tmp_path / "store", tmp_path / "state"),
                tmp_path / "cluster.log")
    got = audit(cfg)
    _accounted(got, len(messages))
    assert got["processed"] == ref["processed"] and got["dead_lettered"] == ref["dead_lettered"]
    assert got["threat_ids"] == ref["threat_ids"] and ref["threat_ids"]
    logs = "".join(p.read_text() for p in (tmp_path / "state").glob("twinguard-*.log"))
    assert "process 2 of 3, 2 worker(s) each (6 in all)" in logs


def test_sigkill_of_one_process_resumes_from_snapshots(twelve: Config, tmp_path: Path) -> None:
    messages = fleet_messages(DEVICES, SECONDS, SEED)
    half = len(messages) // 2
    cfg = fresh_outputs(twelve, "kill")
    conf = write_cluster_config(cfg, tmp_path / "kill.toml")
    state = tmp_path / "state"
    send(cfg, messages[:half])
    proc = start_cluster(cluster_command(conf, 3, 2, tmp_path / "store", state, until_idle=6),
                         tmp_path / "cluster.log")
    wait_for("the first outputs", lambda: output_count(cfg) > 0)
    first = cluster_state(state)
    assert first is not None and first.generation == 1
    # a snapshot epoch (1 s) closes after the first outputs: the restart resumes from one
    wait_for("a snapshot", lambda: any(p.stat().st_size > 0 for p in (tmp_path / "store").glob(
        "part-*.sqlite3-wal")) or output_count(cfg) > 0, timeout_s=10)
    os.kill(first.pids[1], signal.SIGKILL)
    send(cfg, messages[half:])
    wait_for("the restart", lambda: (s := cluster_state(state)) is not None and s.generation == 2)
    finish(proc, tmp_path / "cluster.log")

    got = audit(cfg)
    _accounted(got, len(messages))
    ref = _reference(cfg, tmp_path)
    assert got["threat_ids"] == ref["threat_ids"]


def test_rescale_three_two_four_on_one_store(twelve: Config, tmp_path: Path) -> None:
    """Each stage ends at the end of its input (`--until-idle` closes open windows, as any stop at
    end of input does), so the reference is one process stopped and resumed at the same points."""
    messages = fleet_messages(DEVICES, SECONDS, SEED)
    third = len(messages) // 3
    stages = [messages[:third], messages[third:2 * third], messages[2 * third:]]
    cfg = fresh_outputs(twelve, "rescale")
    conf = write_cluster_config(cfg, tmp_path / "rescale.toml")
    ref_cfg = fresh_outputs(twelve, "staged")
    ref_conf = write_cluster_config(ref_cfg, tmp_path / "staged.toml")
    store, state = tmp_path / "store", tmp_path / "state"
    for n, part in zip((3, 2, 4), stages, strict=True):
        send(cfg, part)
        run_cluster(cluster_command(conf, n, 2, store, state), tmp_path / f"cluster-{n}.log")
        done = twinguard("--config", str(ref_conf), "run", "--until-idle", "3",
                         "--recovery-dir", str(tmp_path / "ref-store"), "--insecure-dev-key")
        assert done.returncode == 0, done.stderr[-3000:]
    got, ref = audit(cfg), audit(ref_cfg)
    _accounted(got, len(messages))
    _accounted(ref, len(messages))
    assert got["threat_ids"] == ref["threat_ids"] and ref["threat_ids"]


def test_a_lost_member_ends_the_others_with_one_line(twelve: Config, tmp_path: Path) -> None:
    """Without a supervisor: the survivor stops (Bytewax cannot go on) and says what to do."""
    conf = write_cluster_config(twelve, tmp_path / "two.toml")
    store = tmp_path / "store"
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "twinguard.pipelines.cli", "--config", str(conf), "run",
         "--process-id", str(i), "--addresses", addresses, "--recovery-dir", str(store),
         "--insecure-dev-key"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        # killed before the mesh connects, the survivor would wait for its peer, not lose it
        wait_for("the mesh", lambda: committed_epoch(store) >= 2)
        procs[1].kill()
        _, err = procs[0].communicate(timeout=60)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert procs[0].returncode == 2, err[-3000:]
    assert "process 0 lost its connection to a cluster member" in err
    assert "restart every process" in err
