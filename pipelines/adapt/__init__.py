"""Adaptive security: `twinguard feedback`, `twinguard model`, and the readers a dataflow runs."""
