"""`twinguard cluster up|down|status`: the dataflow as N supervised processes on this machine."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from twinguard.pipelines.cluster.local import (
    ClusterSpec,
    ClusterState,
    LocalClusterError,
    Supervisor,
    pid_alive,
    state_path,
    stop,
)
from twinguard.pipelines.config import Config
from twinguard.pipelines.kafka.local import state_dir as default_state_root

START_TIMEOUT_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `twinguard cluster`."""
    parser.add_argument("action", choices=["up", "down", "status"],
                        help="up: start and supervise; down: stop; status: show the processes")
    parser.add_argument("--processes", type=int, default=2, metavar="N",
                        help="processes (default 2)")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="Bytewax workers per process (default 1)")
    parser.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    parser.add_argument("--recovery-dir", help="the recovery store all processes share "
                        "(required by up: a restart resumes from it)")
    parser.add_argument("--state-dir", default=None, help="address file, logs and state of the "
                        "local cluster (default: <TWINGUARD_STATE_DIR or ~/.local/state/"
                        "twinguard>/cluster)")
    parser.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                        help="end once every input partition is drained and idle this long")
    parser.add_argument("--max-restarts", type=int, default=5,
                        help="whole-cluster restarts before giving up (default 5)")
    parser.add_argument("--detach", action="store_true",
                        help="up: return once started; the supervisor runs on (stop it with down)")
    parser.add_argument("--insecure-dev-key", action="store_true",
                        help="accept the public development signing key (demos and tests only)")


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Dispatch the action."""
    where = Path(args.state_dir) if args.state_dir else default_state_root() / "cluster"
    if args.action == "down":
        print("cluster stopped" if stop(where) else f"no cluster running (state in {where})")
        return 0
    if args.action == "status":
        return _status(where)
    if not cfg.recovery.dir:
        raise LocalClusterError("cluster up needs --recovery-dir (or [recovery] dir): when a "
                                "process dies the cluster restarts from its snapshots")
    if args.processes < 1 or args.workers < 1:
        raise LocalClusterError("--processes and --workers must be at least 1")
    running = ClusterState.read(state_path(where))
    if running and pid_alive(running.supervisor_pid):
        raise LocalClusterError(f"a cluster is already running from {where} (supervisor pid "
                                f"{running.supervisor_pid}): `twinguard cluster down` first")
    spec = ClusterSpec(args.processes, args.workers, cfg.kafka.brokers,
                       Path(cfg.recovery.dir).resolve(), where, config=args.config,
                       until_idle=args.until_idle, insecure_dev_key=args.insecure_dev_key,
                       max_restarts=args.max_restarts)
    if args.detach:
        return _detach(args, where)
    return Supervisor(spec).run()


def _detach(args: argparse.Namespace, where: Path) -> int:
    """The same `cluster up` without --detach in a new session; wait until its processes run."""
    where.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a != "--detach"]
    with (where / "supervisor.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "twinguard.pipelines.cli", *argv],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        st = ClusterState.read(state_path(where))
        if st and st.supervisor_pid == proc.pid and st.pids:
            print(f"cluster up: {st.processes} process(es) x {st.workers} worker(s), supervisor "
                  f"pid {proc.pid}; logs in {where}; stop with `twinguard cluster down`")
            return 0
        if proc.poll() is not None:
            raise LocalClusterError(f"the cluster supervisor exited ({proc.returncode}): see "
                                    f"{where / 'supervisor.log'}")
        time.sleep(0.2)
    raise LocalClusterError(f"the cluster did not start within {START_TIMEOUT_S:.0f} s: see "
                            f"{where / 'supervisor.log'}")


def _status(where: Path) -> int:
    st = ClusterState.read(state_path(where))
    if st is None or not pid_alive(st.supervisor_pid):
        print(f"no cluster running (state in {where})")
        return 1
    print(f"cluster: supervisor pid {st.supervisor_pid}, generation {st.generation}, "
          f"{st.restarts} restart(s){', last death ' + st.last_death if st.last_death else ''}")
    up = 0
    for i, (pid, addr) in enumerate(zip(st.pids, st.addresses, strict=False)):
        alive = pid_alive(pid)
        up += alive
        print(f"  twinguard-{i}  pid {pid:<8} {addr:<22} {'running' if alive else 'down'}")
    return 0 if up == st.processes else 1
