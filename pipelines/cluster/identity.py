"""Which process of which cluster this is: run options, then Bytewax's own variables, then [cluster].

Bytewax reads `-i/-a/-w` or BYTEWAX_PROCESS_ID, BYTEWAX_ADDRESSES, BYTEWAX_HOSTFILE_PATH,
BYTEWAX_WORKERS_PER_PROCESS, and on Kubernetes the pod ordinal of BYTEWAX_POD_NAME within
BYTEWAX_STATEFULSET_NAME. The same rules apply here, so the same image runs as pod 0..N-1; the
result is checked as a whole, so a mistake is refused with one line instead of a mesh that hangs.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from twinguard.pipelines.cluster.settings import ClusterConfig


class ClusterIdentityError(ValueError):
    """The process cannot tell its place in the cluster; the message says what to set."""


@dataclass(frozen=True)
class Place:
    """This process's place: its id among `processes`, everyone's addresses, workers per process."""

    processes: int
    process_id: int | None  # None: a single process (no mesh)
    addresses: tuple[str, ...]
    workers: int

    @property
    def total_workers(self) -> int:
        """Workers of the whole cluster: Kafka partitions and state shards spread over these."""
        return self.processes * self.workers

    def describe(self) -> str:
        """One line for the log."""
        if self.process_id is None:
            return f"single process, {self.workers} worker(s)"
        return (f"process {self.process_id} of {self.processes}, {self.workers} worker(s) each "
                f"({self.total_workers} in all), mesh {';'.join(self.addresses)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster options of `twinguard run`."""
    g = parser.add_argument_group("cluster", "one process of a multi-process run (default: "
                                  "BYTEWAX_* variables, then the [cluster] config section)")
    g.add_argument("--processes", type=int, default=None, metavar="N",
                   help="processes in the cluster (default: the number of addresses, else 1)")
    g.add_argument("--process-id", type=int, default=None, metavar="I",
                   help="this process's id, 0..N-1 (default: BYTEWAX_PROCESS_ID or the pod "
                   "ordinal of BYTEWAX_POD_NAME in BYTEWAX_STATEFULSET_NAME)")
    g.add_argument("--addresses", default=None, metavar="FILE|LIST",
                   help="every process's host:port, process 0 first: a file (one per line) or "
                   "a ';'-separated list")


def resolve(cfg: ClusterConfig, env: Mapping[str, str], *, processes: int | None = None,
            process_id: int | None = None, addresses: str | None = None,
            workers: int | None = None) -> Place:
    """The place of this process from options (not None), Bytewax variables, then the config."""
    w = workers if workers is not None else _int(env, "BYTEWAX_WORKERS_PER_PROCESS", cfg.workers)
    if w < 1:
        raise ClusterIdentityError(f"workers per process must be at least 1, got {w}")
    pid = process_id if process_id is not None else _process_id(env)
    n = processes if processes is not None else (cfg.processes if cfg.processes > 1 else None)
    addrs = _addresses(addresses, env, cfg, n, pid)
    if n is None:
        n = len(addrs) if addrs else 1
    if n < 1:
        raise ClusterIdentityError(f"--processes must be at least 1, got {n}")
    if n == 1 and pid in (None, 0) and len(addrs) <= 1:
        return Place(1, None, (), w)
    if not addrs:
        raise ClusterIdentityError(
            f"{n} processes need every process's address: pass --addresses FILE|LIST, set "
            "BYTEWAX_ADDRESSES or BYTEWAX_HOSTFILE_PATH, or [cluster] address_template")
    if len(addrs) != n:
        raise ClusterIdentityError(f"{n} processes but {len(addrs)} addresses "
                                   f"({';'.join(addrs)}): give exactly one address per process")
    if pid is None:
        raise ClusterIdentityError(
            f"a cluster of {n} processes needs this process's id: pass --process-id 0..{n - 1}, "
            "set BYTEWAX_PROCESS_ID, or BYTEWAX_POD_NAME and BYTEWAX_STATEFULSET_NAME")
    if not 0 <= pid < n:
        raise ClusterIdentityError(f"process id {pid} is outside 0..{n - 1} for {n} processes: "
                                   "scale the StatefulSet and [cluster] processes together")
    return Place(n, pid, tuple(addrs), w)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ClusterIdentityError(f"{name}={raw!r} is not a whole number") from None


def _process_id(env: Mapping[str, str]) -> int | None:
    if env.get("BYTEWAX_PROCESS_ID", "").strip():
        return _int(env, "BYTEWAX_PROCESS_ID", 0)
    pod, sts = env.get("BYTEWAX_POD_NAME", ""), env.get("BYTEWAX_STATEFULSET_NAME", "")
    if not (pod and sts):
        return None
    m = re.fullmatch(re.escape(sts) + r"-(\d+)", pod)
    if not m:
        raise ClusterIdentityError(f"pod name {pod!r} is not {sts!r}-<ordinal>: set "
                                   "BYTEWAX_STATEFULSET_NAME to the StatefulSet's name")
    return int(m.group(1))


def _addresses(given: str | None, env: Mapping[str, str], cfg: ClusterConfig,
               processes: int | None, pid: int | None) -> list[str]:
    if given:
        return _list_or_file(given, "--addresses")
    if env.get("BYTEWAX_ADDRESSES", "").strip():
        return _list_or_file(env["BYTEWAX_ADDRESSES"], "BYTEWAX_ADDRESSES", files=False)
    if env.get("BYTEWAX_HOSTFILE_PATH", "").strip():
        return _read_file(Path(env["BYTEWAX_HOSTFILE_PATH"]), "BYTEWAX_HOSTFILE_PATH")
    if cfg.addresses:
        return _list_or_file(cfg.addresses, "[cluster] addresses")
    if cfg.address_template and (processes or 1) > 1:
        if "{id}" not in cfg.address_template:
            raise ClusterIdentityError(f"[cluster] address_template {cfg.address_template!r} "
                                       "has no {id} placeholder for the process id")
        return [cfg.address_template.replace("{id}", str(i)) for i in range(processes or 1)]
    return []


def _list_or_file(text: str, where: str, files: bool = True) -> list[str]:
    if files and ";" not in text and "," not in text and Path(text).is_file():
        return _read_file(Path(text), where)
    addrs = [a.strip() for a in re.split(r"[;,]", text) if a.strip()]
    for a in addrs:
        _check(a, where)
    return addrs


def _read_file(path: Path, where: str) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ClusterIdentityError(f"{where}: cannot read address file {path} ({e.strerror})"
                                   ) from None
    addrs = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for a in addrs:
        _check(a, f"{where} {path}")
    return addrs


def _check(address: str, where: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterIdentityError(f"{where}: {address!r} is not host:port")
