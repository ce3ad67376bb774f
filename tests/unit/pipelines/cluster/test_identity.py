"""A process's place in the cluster: options, Bytewax variables, the pod ordinal and [cluster]."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinguard.pipelines.cluster.identity import ClusterIdentityError, Place, resolve
from twinguard.pipelines.cluster.settings import ClusterConfig

THREE = "a:1;b:2;c:3"


def test_nothing_set_is_a_single_process() -> None:
    assert resolve(ClusterConfig(), {}) == Place(1, None, (), 1)
    assert resolve(ClusterConfig(), {}, workers=4).total_workers == 4


def test_options_win_over_variables() -> None:
    env = {"BYTEWAX_PROCESS_ID": "0", "BYTEWAX_ADDRESSES": "x:1;y:2",
           "BYTEWAX_WORKERS_PER_PROCESS": "3"}
    p = resolve(ClusterConfig(), env, process_id=2, addresses=THREE, workers=2)
    assert (p.processes, p.process_id, p.addresses, p.workers) == (3, 2, ("a:1", "b:2", "c:3"), 2)
    assert resolve(ClusterConfig(), env) == Place(2, 0, ("x:1", "y:2"), 3)


def test_pod_ordinal_and_hostfile_as_in_the_statefulset(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# mesh\ntwinguard-0.mesh:9999\ntwinguard-1.mesh:9999\n\n")
    env = {"BYTEWAX_POD_NAME": "twinguard-1", "BYTEWAX_STATEFULSET_NAME": "twinguard",
           "BYTEWAX_HOSTFILE_PATH": str(hosts)}
    assert resolve(ClusterConfig(), env) == Place(2, 1, ("twinguard-0.mesh:9999",
                                                         "twinguard-1.mesh:9999"), 1)


def test_address_template_expands_over_processes() -> None:
    cfg = ClusterConfig(processes=3, workers=2, address_template="tg-{id}.mesh:9999")
    p = resolve(cfg, {"BYTEWAX_PROCESS_ID": "2"})
    assert p.addresses == ("tg-0.mesh:9999", "tg-1.mesh:9999", "tg-2.mesh:9999")
    assert p.total_workers == 6


def test_address_file_option(tmp_path: Path) -> None:
    f = tmp_path / "addrs"
    f.write_text("h:1\nh:2\n")
    assert resolve(ClusterConfig(), {}, process_id=0, addresses=str(f)).addresses == ("h:1", "h:2")


@pytest.mark.parametrize(("env", "kw", "says"), [
    ({}, {"processes": 3}, "need every process's address"),
    ({}, {"processes": 2, "addresses": THREE, "process_id": 0}, "2 processes but 3 addresses"),
    ({}, {"addresses": THREE}, "needs this process's id"),
    ({}, {"addresses": THREE, "process_id": 3}, "outside 0..2"),
    ({"BYTEWAX_POD_NAME": "web-0", "BYTEWAX_STATEFULSET_NAME": "twinguard"}, {"addresses": THREE},
     "is not 'twinguard'-<ordinal>"),
    ({"BYTEWAX_PROCESS_ID": "one"}, {"addresses": THREE}, "not a whole number"),
    ({}, {"addresses": "a:1;nohost", "process_id": 0}, "is not host:port"),
    ({}, {"workers": 0}, "at least 1"),
    ({"BYTEWAX_HOSTFILE_PATH": "/nonexistent/hosts", "BYTEWAX_PROCESS_ID": "0"}, {},
     "cannot read address file"),
])
def test_mistakes_are_refused_with_what_to_set(env: dict[str, str], kw: dict[str, object],
                                               says: str) -> None:
    with pytest.raises(ClusterIdentityError, match=says.replace("(", r"\(").replace(".", r"\.")):
        resolve(ClusterConfig(), env, **kw)  # type: ignore[arg-type]
