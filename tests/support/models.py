"""Model directories for registry tests: real copies of the shipped model under a new version (the
hot-swap benchmark builds its second version the same way)."""

from twinguard.benchmarks.adapt_live import model_version_dir

__all__ = ["model_version_dir"]
