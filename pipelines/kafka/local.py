"""A real single-node Apache Kafka (KRaft) broker on 127.0.0.1, run from Maven Central jars."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinguard.pipelines.kafka import jars

HOST = "127.0.0.1"
MIN_JAVA = 17
# No log4j shutdown hook: Kafka logs while shutting down, after the hook would have closed logging.
JVM_OPTS = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Dlog4j2.shutdownHookEnabled=false")
MARKER = "twinguard-broker.json"  # written before formatting: "this data dir is ours"
LOG_NAME = "kafka.log"

# Popen handles of brokers started by this process, so they are reaped (no zombies) and waited on.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class KafkaLocalError(RuntimeError):
    """The local broker cannot be installed, started or stopped; the message says what to fix."""


@dataclass(frozen=True)
class BrokerInfo:
    """A running local broker: bootstrap address, JVM pid, data dir and log file."""

    brokers: str
    pid: int
    data_dir: Path
    log_path: Path

    @property
    def port(self) -> int:
        """The PLAINTEXT listener port."""
        return int(self.brokers.rsplit(":", 1)[1])


def lib_dir() -> Path:
    """The broker jars folder, fetched with Maven on first use; raises KafkaLocalError if it cannot."""
    try:
        return jars.ensure_jars()
    except jars.KafkaJarsError as e:
        raise KafkaLocalError(str(e)) from e


def state_dir() -> Path:
    """Where local runtime state lives: $TWINGUARD_STATE_DIR, else $XDG_STATE_HOME/twinguard
    (default ~/.local/state/twinguard), so a broker started anywhere is found from anywhere."""
    if os.environ.get("TWINGUARD_STATE_DIR"):
        return Path(os.environ["TWINGUARD_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "twinguard"


def state_file() -> Path:
    """The JSON file recording the broker this project started (pid, port, data dir, log)."""
    return state_dir() / "kafka.json"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def up(port: int = 9092, data_dir: Path | None = None, timeout_s: float = 120) -> BrokerInfo:
    """Start the local broker (or return the running one) and wait until it serves metadata."""
    running = _running_from_state()
    if running is not None:
        _check_same(running, port, data_dir)
        _wait_ready(running, timeout_s)  # it may still be starting (e.g. from another shell)
        return running
    if _port_in_use(port):
        raise KafkaLocalError(
            f"port {port} on {HOST} is already in use by another process (not a broker started by "
            "twinguard); stop that process or choose another port"
        )
    java = java_executable()
    lib = lib_dir()
    data = Path(data_dir or state_dir() / "kafka").resolve()
    props = _prepare_data_dir(data, port, java, lib)
    proc = _spawn(java, lib, props, data / LOG_NAME)
    info = BrokerInfo(f"{HOST}:{port}", proc.pid, data, data / LOG_NAME)
    _write_state(info, props)
    try:
        _wait_ready(info, timeout_s)
    except BaseException:
        down()  # never leave a half-started JVM behind, also on Ctrl-C
        raise
    return info


def status() -> BrokerInfo | None:
    """The broker from the state file if its JVM is alive and it answers metadata, else None."""
    info = _running_from_state()
    if info is None or not _answers_metadata(info.brokers, timeout_s=2):
        return None
    return info


def down(timeout_s: float = 30) -> bool:
    """Stop the recorded broker (SIGTERM, SIGKILL after timeout_s); True if one was stopped."""
    state = _read_state()
    if state is None:
        return False
    info, props = state
    stopped = False
    if _is_our_broker(info.pid, props):
        _terminate(info.pid, timeout_s)
        stopped = True
    _CHILDREN.pop(info.pid, None)
    state_file().unlink(missing_ok=True)
    return stopped


def java_executable() -> str:
    """The `java` to run ($JAVA_HOME/bin/java, else from PATH); raises unless it is Java 17+."""
    home_java = Path(os.environ.get("JAVA_HOME") or "/nonexistent") / "bin" / "java"
    java = str(home_java) if home_java.exists() else shutil.which("java")
    if java is None:
        raise KafkaLocalError(
            f"`java` not found: Kafka 4.x needs Java {MIN_JAVA}+ (e.g. `apt-get install "
            "openjdk-17-jre-headless`), on PATH or in $JAVA_HOME"
        )
    version = _java_major(java)
    if version < MIN_JAVA:
        raise KafkaLocalError(
            f"{java} is Java {version}; Kafka 4.x needs Java {MIN_JAVA}+ "
            "(install openjdk-17-jre-headless or newer, and put it first on PATH or set JAVA_HOME)"
        )
    return java


def _java_major(java: str) -> int:
    """Major version from `java -version` ("1.8.0_392" -> 8, "17.0.15" -> 17)."""
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise KafkaLocalError(f"cannot tell the Java version of {java}: {out.stderr.strip()[:300]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _check_same(info: BrokerInfo, port: int, data_dir: Path | None) -> None:
    """Raise unless the already running broker is the one asked for (same port and data dir)."""
    if info.port != port or (data_dir is not None and Path(data_dir).resolve() != info.data_dir):
        raise KafkaLocalError(
            f"a twinguard broker is already running at {info.brokers} (pid {info.pid}, data "
            f"{info.data_dir}); stop it first (kafka down) or use it"
        )


def _prepare_data_dir(data: Path, port: int, java: str, lib: Path) -> Path:
    """Write server.properties for this start; format the log dir unless ours and formatted."""
    logs = data / "logs"
    marker = data / MARKER
    formatted = (logs / "meta.properties").exists()
    if formatted and not marker.exists():
        raise KafkaLocalError(
            f"{data} holds Kafka data that twinguard did not create; remove it or pass another "
            "data dir"
        )
    if not formatted and data.exists() and any(data.iterdir()) and not marker.exists():
        raise KafkaLocalError(
            f"{data} is not empty and not a twinguard broker dir; pass another data dir"
        )
    if _locked_by_kafka(logs):
        raise KafkaLocalError(
            f"{data} is in use by another running Kafka broker (not the one in {state_file()}); "
            "stop it or pass another data dir"
        )
    props = data / "server.properties"
    data.mkdir(parents=True, exist_ok=True)
    props.write_text(_server_properties(port, _controller_port(port), logs))
    if not formatted:
        shutil.rmtree(logs, ignore_errors=True)  # ours, but a previous format did not finish
        cluster_id = new_cluster_id()
        marker.write_text(json.dumps({"cluster_id": cluster_id, "created_at": time.time()}))
        _format(java, lib, props, cluster_id)
    return props


def _locked_by_kafka(logs: Path) -> bool:
    """True if a live JVM holds Kafka's lock on this log dir (starting a second one corrupts it)."""
    lock = logs / ".lock"
    if not lock.exists():
        return False
    with lock.open("a") as f:
        try:
            # Java's FileChannel.tryLock is an fcntl lock on Unix, so lockf sees it.
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN)
    return False


def _controller_port(broker_port: int) -> int:
    """A free port for the KRaft controller listener (a single node accepts a new one per start)."""
    port = free_port()
    while port == broker_port:  # the broker port is not bound yet, so the kernel may offer it
        port = free_port()
    return port


def _server_properties(port: int, controller_port: int, logs: Path) -> str:
    """One combined broker+controller node bound to loopback, replication factors of 1."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(logs),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def new_cluster_id() -> str:
    """A random KRaft cluster id (url-safe base64 of a UUID). Never one starting with '-': the
    storage tool would read it as an option (1 start in 64 failed that way)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _format(java: str, lib: Path, props: Path, cluster_id: str) -> None:
    """Format the KRaft log dir as a standalone controller quorum of one."""
    cmd = [
        java,
        "-Xmx256m",
        *_log4j_opts(),
        "-cp",
        f"{lib}/*",
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        cluster_id,
        "-c",
        str(props),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise KafkaLocalError(
            f"formatting the Kafka data dir failed (exit {out.returncode}):\n"
            f"{(out.stdout + out.stderr).strip()[-2000:]}"
        )


def _log4j_opts() -> list[str]:
    """-Dlog4j2.configurationFile for our quiet broker logging, if the file is shipped."""
    config = jars.broker_file("log4j2.properties")
    return [f"-Dlog4j2.configurationFile={config}"] if config.exists() else []


def _spawn(java: str, lib: Path, props: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the broker JVM detached (own session: outlives the CLI, ignores terminal Ctrl-C)."""
    cmd = [java, *JVM_OPTS, *_log4j_opts(), "-cp", f"{lib}/*", "kafka.Kafka", str(props)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=props.parent,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _wait_ready(info: BrokerInfo, timeout_s: float) -> None:
    """Block until the broker is unfenced and answers metadata; fail fast if the JVM exits."""
    client = _admin(info.brokers)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(info.pid):
            child = _CHILDREN.get(info.pid)
            code = f" with code {child.returncode}" if child is not None else ""
            raise KafkaLocalError(
                f"the Kafka JVM (pid {info.pid}) exited{code} while starting; "
                f"last lines of {info.log_path}:\n{_tail(info.log_path)}"
            )
        if _answers_metadata(info.brokers, timeout_s=2, client=client):
            return
        time.sleep(0.2)
    raise KafkaLocalError(
        f"the Kafka broker at {info.brokers} did not answer metadata within {timeout_s:.0f} s; "
        f"last lines of {info.log_path}:\n{_tail(info.log_path)}"
    )


def _admin(brokers: str) -> Any:
    """A quiet AdminClient for probing: librdkafka's connection-refused lines are expected here."""
    from confluent_kafka.admin import AdminClient

    # Short reconnect backoff: the default grows to 10 s and would delay noticing a ready broker.
    return AdminClient(
        {"bootstrap.servers": brokers, "log_level": 0, "reconnect.backoff.max.ms": 250}
    )


def _answers_metadata(brokers: str, timeout_s: float, client: Any = None) -> bool:
    """True when the cluster answers a metadata request listing at least one broker."""
    from confluent_kafka import KafkaException

    try:
        return bool((client or _admin(brokers)).list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (or a note that there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _port_in_use(port: int) -> bool:
    """True when something already listens on HOST:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _write_state(info: BrokerInfo, props: Path) -> None:
    """Record the started broker atomically, so `down` can find it from another process."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "pid": info.pid,
        "brokers": info.brokers,
        "port": info.port,
        "data_dir": str(info.data_dir),
        "log_path": str(info.log_path),
        "properties": str(props),
        "started_at": time.time(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def _read_state() -> tuple[BrokerInfo, Path] | None:
    """The broker recorded in the state file and its server.properties, or None."""
    path = state_file()
    try:
        doc = json.loads(path.read_text())
        info = BrokerInfo(
            doc["brokers"], int(doc["pid"]), Path(doc["data_dir"]), Path(doc["log_path"])
        )
        return info, Path(doc["properties"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KafkaLocalError(
            f"broken broker state file {path} ({e}); delete it and retry"
        ) from None


def _running_from_state() -> BrokerInfo | None:
    """The recorded broker if its JVM still runs; a stale state file is removed."""
    state = _read_state()
    if state is None:
        return None
    info, props = state
    if _is_our_broker(info.pid, props):
        return info
    _CHILDREN.pop(info.pid, None)
    state_file().unlink(missing_ok=True)
    return None


def _is_our_broker(pid: int, props: Path) -> bool:
    """True if pid is alive and is the Kafka JVM for these properties (guards against pid reuse)."""
    if not _pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    return cmdline is None or ("kafka.Kafka" in cmdline and str(props) in cmdline)


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _read_proc(pid, "stat")
    return stat is None or stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str] | None:
    """The process's argv from /proc (None where /proc is unavailable)."""
    raw = _read_proc(pid, "cmdline")
    return None if raw is None else raw.split("\0")


def _read_proc(pid: int, name: str) -> str | None:
    """Read /proc/<pid>/<name>, or None if it cannot be read."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return None


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM (the broker shuts down cleanly), then SIGKILL if still alive after timeout_s."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_dead(pid, wait_s):
            return
    raise KafkaLocalError(f"Kafka broker pid {pid} did not exit after SIGKILL")


def _wait_dead(pid: int, timeout_s: float) -> bool:
    """Wait up to timeout_s for pid to exit (reaping it if it is our child)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    return _poll_until(lambda: not _pid_alive(pid), timeout_s)


def _poll_until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `done` every 0.1 s until it is true or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
