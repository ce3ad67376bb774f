"""deploy/kubernetes checked offline: every manifest against the Kubernetes schemas, and the pods'
environment resolved by the same code `twinguard run` uses, for every pod of the StatefulSet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from twinguard.pipelines.cluster.identity import Place, resolve
from twinguard.pipelines.cluster.local import STATEFULSET, ClusterSpec, pod_env
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.kafka.admin import topic_specs

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
K8S_VERSION = "1.30.0"  # oldest Kubernetes release still maintained by common managed services


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization() -> dict[str, Any]:
    (k,) = _docs(BASE / "kustomization.yaml")
    return k


def _kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for r in _kustomization()["resources"] for d in _docs(BASE / r) if d["kind"] == kind]
    return doc


def _manifests() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_is_valid_kubernetes(path: Path) -> None:
    for doc in _docs(path):
        if doc["apiVersion"].startswith("kafka.strimzi.io/"):
            continue  # a custom resource: checked against twinguard's topics below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomization_names_every_file_and_nothing_else() -> None:
    k = _kustomization()
    named = set(k["resources"]) | {f for g in k["configMapGenerator"] for f in g["files"]}
    on_disk = {p.name for p in BASE.iterdir()} - {"kustomization.yaml"}
    assert named == on_disk


def _pod_env(ordinal: int, hostfile: Path) -> dict[str, str]:
    """The container's environment in pod `twinguard-<ordinal>` (Secret values stand in)."""
    sts = _kind("StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = f"{sts['metadata']['name']}-{ordinal}"
        else:
            env[var["name"]] = "secret-" + var["valueFrom"]["secretKeyRef"]["key"]
    env["BYTEWAX_HOSTFILE_PATH"] = str(hostfile)  # the ConfigMap's file, mounted elsewhere here
    return env


def _pod_config(env: dict[str, str]) -> Config:
    return load_config(BASE / "twinguard.toml", env=env)


def test_each_pod_resolves_its_own_place_in_the_mesh() -> None:
    sts = _kind("StatefulSet")
    replicas = _kustomization()["replicas"][0]["count"]
    assert sts["spec"]["replicas"] == replicas
    mesh = sts["spec"]["serviceName"]
    (port,) = [p["port"] for p in _kind("Service")["spec"]["ports"] if p["name"] == "mesh"]
    expected = tuple(f"{sts['metadata']['name']}-{i}.{mesh}:{port}" for i in range(replicas))
    places = []
    for i in range(replicas):
        env = _pod_env(i, BASE / "hosts")
        places.append(resolve(_pod_config(env).cluster, env))
    assert places == [Place(replicas, i, expected, 2) for i in range(replicas)]


def test_pods_find_config_recovery_store_and_secrets_where_they_are_mounted() -> None:
    sts = _kind("StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = _pod_env(0, BASE / "hosts")
    cfg = _pod_config(env)
    args = container["args"]
    assert args[args.index("--config") + 1] == f"{mounts['config']}/twinguard.toml"
    assert args[-1] == "run"
    assert cfg.recovery.dir == mounts["recovery"]
    assert cfg.kafka.extra["ssl.ca.location"] == f"{mounts['kafka-tls']}/ca.crt"
    assert cfg.kafka.extra["sasl.password"] == "secret-kafka-sasl-password"
    assert env[cfg.integrity.master_key_env] == "secret-hmac-master-key"
    secret_keys = set(_kind("Secret")["stringData"])
    referenced = {v["valueFrom"]["secretKeyRef"]["key"] for v in container["env"]
                  if "secretKeyRef" in v.get("valueFrom", {})}
    tls = next(v for v in spec["volumes"] if v["name"] == "kafka-tls")["secret"]["items"]
    assert referenced | {i["key"] for i in tls} <= secret_keys
    claim = next(v for v in spec["volumes"] if v["name"] == "recovery")
    assert claim["persistentVolumeClaim"]["claimName"] == _kind("PersistentVolumeClaim")[
        "metadata"]["name"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "$TWINGUARD__RECOVERY__DIR" in " ".join(container[probe]["exec"]["command"])


def test_sizes_leave_no_worker_idle() -> None:
    env = _pod_env(0, BASE / "hosts")
    cfg = _pod_config(env)
    total = resolve(cfg.cluster, env).total_workers
    assert cfg.topics.partitions >= total and cfg.pipeline.shards >= total
    assert cfg.recovery.partitions >= total


def test_strimzi_topics_are_twinguards_topics() -> None:
    cfg = _pod_config(_pod_env(0, BASE / "hosts"))
    want = {s.name: s.config.get("cleanup.policy", "delete") for s in topic_specs(cfg)}
    got = {}
    for doc in _docs(DEPLOY / "strimzi" / "topics.yaml"):
        assert doc["kind"] == "KafkaTopic" and doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["spec"]["partitions"] == cfg.topics.partitions
        assert re.fullmatch(r"[a-z0-9.-]+", doc["metadata"]["name"])
        got[doc["spec"]["topicName"]] = doc["spec"]["config"]["cleanup.policy"]
    assert got == want


def test_image_runs_twinguard_as_the_pods_user() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    ctx = _kind("StatefulSet")["spec"]["template"]["spec"]["securityContext"]
    assert f"USER {ctx['runAsUser']}" in text
    assert 'ENTRYPOINT ["twinguard"]' in text
    assert "--require-hashes -r /tmp/requirements.lock" in text


def test_local_cluster_gives_processes_the_pods_variables(tmp_path: Path) -> None:
    sts = _kind("StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    pod_vars = {v["name"] for v in container["env"]}
    spec = ClusterSpec(3, 2, "b:9092", tmp_path / "store", tmp_path / "state")
    local = pod_env(spec, 1, tmp_path / "hosts")
    # the brokers come from the pods' config file; everything else is set the same way
    assert set(local) - {"TWINGUARD__KAFKA__BROKERS"} <= pod_vars
    assert local["BYTEWAX_STATEFULSET_NAME"] == STATEFULSET == sts["metadata"]["name"]
    (tmp_path / "hosts").write_text("127.0.0.1:1\n127.0.0.1:2\n127.0.0.1:3\n")
    assert resolve(load_config(env=local).cluster, local) == Place(
        3, 1, ("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"), 2)
