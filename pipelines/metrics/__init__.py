"""Prometheus metrics of a dataflow process: what is counted, where, and the HTTP endpoint."""
