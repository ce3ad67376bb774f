"""A local cluster: N `twinguard run` processes on 127.0.0.1 with the pods' environment, supervised.

Each process gets what a StatefulSet pod gets (pipelines/cluster/identity.py reads it): its pod name
`twinguard-<i>`, the StatefulSet name, an address file with every process's host:port, the workers
per process and the one shared recovery store. A Bytewax cluster cannot lose a member and go on:
when one process dies, the others are stopped and all N start again from the last snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from twinguard.pipelines.kafka.local import free_port

log = logging.getLogger(__name__)
STATEFULSET = "twinguard"  # the pods' names are twinguard-0..N-1, as in deploy/kubernetes
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL after this long
POLL_S = 0.2


class LocalClusterError(RuntimeError):
    """The local cluster cannot start or keep running; the message says why and what to do."""


@dataclass(frozen=True)
class ClusterSpec:
    """What `cluster up` was asked for."""

    processes: int
    workers: int
    brokers: str
    recovery_dir: Path
    state_dir: Path
    config: str | None = None
    until_idle: float | None = None
    insecure_dev_key: bool = False
    max_restarts: int = 5


@dataclass
class ClusterState:
    """What `cluster status` and `cluster down` read: the supervisor and its current processes."""

    supervisor_pid: int
    processes: int
    workers: int
    generation: int = 0
    restarts: int = 0
    pids: list[int] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    last_death: str = ""

    def write(self, path: Path) -> None:
        """Replace the state file in one rename (readers never see half of it)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    @staticmethod
    def read(path: Path) -> ClusterState | None:
        """The state, or None when no cluster was started here."""
        try:
            return ClusterState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def state_path(state_dir: Path) -> Path:
    """The state file of the local cluster kept in `state_dir`."""
    return state_dir / "cluster.json"


def pod_env(spec: ClusterSpec, index: int, hostfile: Path) -> dict[str, str]:
    """The variables a StatefulSet pod of deploy/kubernetes gets, for process `index`."""
    return {
        "BYTEWAX_POD_NAME": f"{STATEFULSET}-{index}",
        "BYTEWAX_STATEFULSET_NAME": STATEFULSET,
        "BYTEWAX_HOSTFILE_PATH": str(hostfile),
        "BYTEWAX_WORKERS_PER_PROCESS": str(spec.workers),
        "TWINGUARD__KAFKA__BROKERS": spec.brokers,
        "TWINGUARD__RECOVERY__DIR": str(spec.recovery_dir),
    }


def run_command(spec: ClusterSpec) -> list[str]:
    """The command every process runs (the container's command in deploy/kubernetes)."""
    cmd = [sys.executable, "-m", "twinguard.pipelines.cli"]
    if spec.config:
        cmd += ["--config", spec.config]
    cmd.append("run")
    if spec.until_idle:
        cmd += ["--until-idle", str(spec.until_idle)]
    if spec.insecure_dev_key:
        cmd.append("--insecure-dev-key")
    return cmd


class Supervisor:
    """Starts the N processes, restarts all of them when one dies, stops them on SIGTERM."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.state = ClusterState(os.getpid(), spec.processes, spec.workers)
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def run(self) -> int:
        """Supervise until every process ended cleanly (0), `down` (0) or too many restarts (1)."""
        self.spec.state_dir.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGTERM, self._on_term)
        try:
            self._start()
            while True:
                outcome = self._watch()
                if outcome == "finished" or self.stopping:
                    log.info("cluster: %s", "stopped" if self.stopping else
                             "every process finished")
                    return 0
                self._stop_all()
                if self.state.restarts >= self.spec.max_restarts:
                    log.error("cluster: %s; gave up after %d restarts (see the logs in %s)",
                              outcome, self.state.restarts, self.spec.state_dir)
                    return 1
                self.state.restarts += 1
                log.warning("cluster: %s: restarting all %d processes from the last snapshot "
                            "(restart %d of at most %d)", outcome, self.spec.processes,
                            self.state.restarts, self.spec.max_restarts)
                self._start()
        finally:
            self._stop_all()
            state_path(self.spec.state_dir).unlink(missing_ok=True)

    def _on_term(self, _sig: int, _frame: object) -> None:
        self.stopping = True

    def _start(self) -> None:
        """All N processes of a new generation, with fresh mesh ports in the address file."""
        spec = self.spec
        self.state.generation += 1
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(spec.processes)]
        hostfile = spec.state_dir / "hosts"
        hostfile.write_text("\n".join(addresses) + "\n")
        self.children = []
        for i in range(spec.processes):
            logfile = spec.state_dir / f"{STATEFULSET}-{i}.log"
            with logfile.open("ab") as lf:
                lf.write(f"--- generation {self.state.generation}\n".encode())
                lf.flush()
                self.children.append(subprocess.Popen(
                    run_command(spec), stdin=subprocess.DEVNULL, stdout=lf,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **pod_env(spec, i, hostfile)}))
        self.state.pids = [c.pid for c in self.children]
        self.state.addresses = addresses
        self.state.write(state_path(spec.state_dir))
        log.info("cluster: generation %d: %d process(es) x %d worker(s) started (pids %s; logs %s)",
                 self.state.generation, spec.processes, spec.workers,
                 " ".join(map(str, self.state.pids)), spec.state_dir)

    def _watch(self) -> str:
        """Wait until one process fails ("why") or all ended cleanly ("finished")."""
        while not self.stopping:
            codes = [c.poll() for c in self.children]
            failed = [(i, rc) for i, rc in enumerate(codes) if rc not in (None, 0)]
            if failed:
                i, rc = failed[0]
                why = f"signal {-rc}" if rc < 0 else f"exit {rc}"
                self.state.last_death = f"{STATEFULSET}-{i} ({why})"
                self.state.write(state_path(self.spec.state_dir))
                return f"process {i} died ({why})"
            if all(rc == 0 for rc in codes):
                return "finished"
            time.sleep(POLL_S)
        return "stopped"

    def _stop_all(self) -> None:
        for c in self.children:
            if c.poll() is None:
                c.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for c in self.children:
            try:
                c.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop(state_dir: Path, timeout_s: float = 60) -> bool:
    """`cluster down`: SIGTERM the supervisor and wait for it; False when none was running."""
    st = ClusterState.read(state_path(state_dir))
    if st is None or not pid_alive(st.supervisor_pid):
        state_path(state_dir).unlink(missing_ok=True)
        return False
    os.kill(st.supervisor_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(st.supervisor_pid):
        if time.monotonic() > deadline:
            raise LocalClusterError(f"the cluster supervisor (pid {st.supervisor_pid}) did not stop "
                                    f"within {timeout_s:.0f} s: kill it and its processes "
                                    f"({' '.join(map(str, st.pids))})")
        time.sleep(POLL_S)
    return True
