"""The [cluster] config section: how many processes run the dataflow and how they find each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterConfig:
    processes: int = 1             # processes of the cluster (StatefulSet replicas)
    workers: int = 1               # Bytewax workers (threads) per process, the same in every process
    addresses: str = ""            # "host:port;host:port" or a file with one per line
    address_template: str = ""     # e.g. "twinguard-{id}.twinguard-mesh:9999" (pods: derived from id)
