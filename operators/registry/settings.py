"""`[models]`: how the dataflow follows the model registry (twinguard.models)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelsConfig:
    read_topic: bool = True  # `twinguard run` follows the registry and hot-swaps promoted versions
    name: str = "default"  # the registry key this deployment scores with
    catch_up_timeout_s: float = 60.0  # wait this long at start for the promoted version to load
