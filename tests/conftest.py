"""Fixtures every test folder shares: the default config, one runtime built from it, one small fleet."""

from __future__ import annotations

import pytest

# the support helpers assert on behalf of tests: rewrite them so that failures show the values
pytest.register_assert_rewrite("tests.support")

from tests.support.fleet import SMALL_FLEET, Recording, record  # noqa: E402
from twinguard.pipelines.config import Config, load_config  # noqa: E402
from twinguard.pipelines.flow import Runtime  # noqa: E402


@pytest.fixture(scope="session")
def config() -> Config:
    """The shipped defaults, whatever the environment says (frozen: safe to share)."""
    return load_config(env={})


@pytest.fixture(scope="session")
def runtime(config: Config) -> Runtime:
    """Device types, keys, the shipped model and engine settings of the default config."""
    return Runtime.from_config(config)


@pytest.fixture(scope="session")
def small_fleet(runtime: Runtime) -> Recording:
    """40 devices of every type for 60 s with attacks of every class, signed with the runtime's keys."""
    return record(SMALL_FLEET, runtime.types, runtime.keys)
