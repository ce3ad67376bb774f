"""One frozen configuration tree, read once at the entry point (defaults.toml < --config file < env)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from twinguard.operators.decode.brake import BrakeConfig
from twinguard.operators.feedback.settings import FeedbackConfig
from twinguard.operators.registry.settings import ModelsConfig
from twinguard.operators.settings import (
    ActivityConfig,
    DetectionConfig,
    IntelConfig,
    PipelineConfig,
    ResponseConfig,
    RiskConfig,
)
from twinguard.pipelines.archive.settings import ArchiveConfig
from twinguard.pipelines.cluster.settings import ClusterConfig
from twinguard.pipelines.kafka.startup import StartupConfig
from twinguard.pipelines.metrics.settings import MetricsConfig
from twinguard.pipelines.respond.settings import RespondConfig

ENV_PREFIX = "TWINGUARD__"
# librdkafka keys (and ours) whose values are secrets; `*.location`/`*_env` only name where they live
SECRET_SUFFIXES = ("password", "secret", "token", "key.pem", "sasl.jaas.config", "oauthbearer.config")


class ConfigError(ValueError):
    """The configuration is invalid; the message says which key and why."""


@dataclass(frozen=True)
class KafkaConfig:
    brokers: str = "127.0.0.1:9092"
    group_id: str = "twinguard"
    consume_batch: int = 2000
    poll_timeout_s: float = 0.05
    extra: dict[str, str] = field(default_factory=dict)

    def client_settings(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka settings for any client: brokers + pass-through extras (TLS/SASL) + overrides."""
        return {"bootstrap.servers": self.brokers, **self.extra, **overrides}


@dataclass(frozen=True)
class TopicsConfig:
    telemetry: str = "twinguard.telemetry"
    activity: str = "twinguard.activity"
    intel: str = "twinguard.intel"
    feedback: str = "twinguard.feedback"
    twins: str = "twinguard.twins"
    threats: str = "twinguard.threats"
    actions: str = "twinguard.actions"
    deadletter: str = "twinguard.deadletter"
    action_results: str = "twinguard.action_results"
    action_decisions: str = "twinguard.action_decisions"
    commands: str = "twinguard.commands"
    models: str = "twinguard.models"
    windows: str = "twinguard.windows"
    partitions: int = 4

    def all(self) -> dict[str, str]:
        """Role -> topic name for every configured topic."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "partitions"}


@dataclass(frozen=True)
class IntegrityConfig:
    key_file: str = ""
    master_key_env: str = "TWINGUARD_HMAC_MASTER"
    insecure_dev_key: bool = False  # live runs accept the public development key (demos, tests)


@dataclass(frozen=True)
class RecoveryConfig:
    dir: str = ""  # empty: no recovery (state is lost on restart, input re-read from the start)
    snapshot_interval_s: float = 2.0
    backup_interval_s: float = 0.0
    partitions: int = 1


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    response: ResponseConfig = field(default_factory=ResponseConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    brake: BrakeConfig = field(default_factory=BrakeConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    intel: IntelConfig = field(default_factory=IntelConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    startup: StartupConfig = field(default_factory=StartupConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    respond: RespondConfig = field(default_factory=RespondConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)

    def replace(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys of some sections changed: cfg.replace(kafka={"brokers": b})."""
        cfg: Config = _build(Config, _merge(dataclasses.asdict(self), sections), "")
        return cfg


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Defaults, then the TOML file at `path`, then TWINGUARD__SECTION__KEY environment overrides."""
    tree = tomllib.loads(resources.files("twinguard.pipelines").joinpath("defaults.toml").read_text())
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        tree = _merge(tree, tomllib.loads(p.read_text()))
    tree = _merge(tree, _env_overrides(os.environ if env is None else env))
    cfg: Config = _build(Config, tree, "")
    return cfg


def masked(cfg: Config) -> dict[str, Any]:
    """The resolved config as a dict with every secret-looking value replaced by '***'."""
    def walk(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if key.lower().endswith(SECRET_SUFFIXES) and node not in ("", None):
            return "***"
        return node
    tree: dict[str, Any] = walk(dataclasses.asdict(cfg), "")
    return tree


def _env_overrides(env: Any) -> dict[str, Any]:
    """TWINGUARD__SECTION__KEY=value; librdkafka keys: TWINGUARD__KAFKA__EXTRA__SASL__PASSWORD
    sets kafka.extra["sasl.password"] (after EXTRA, `__` stands for a dot)."""
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) > 2 and parts[:2] == ["kafka", "extra"]:
            parts = [*parts[:2], ".".join(parts[2:])]
        if len(parts) < 2:
            raise ConfigError(f"environment variable {name}: expected {ENV_PREFIX}SECTION__KEY")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: Any, tree: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key '{path}' (known: {', '.join(sorted(known))})")
        default = getattr(cls(), key)
        if (dataclasses.is_dataclass(default) or isinstance(default, dict)) and not isinstance(
                value, dict):
            raise ConfigError(f"config key '{path}' is a section; set its keys, not {value!r}")
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, path + ".")
        elif isinstance(default, dict):
            kwargs[key] = {str(k): str(v) for k, v in value.items()}
        else:
            kwargs[key] = _coerce(value, type(default), path)
    return cls(**kwargs)


def _coerce(value: Any, kind: type, path: str) -> Any:
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{path}' expects {kind.__name__}, got {value!r}") from None
