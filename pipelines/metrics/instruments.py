"""Every metric twinguard exports, declared once (names leak to dashboards and alerting rules).

All live in prometheus_client's default registry, so Bytewax's own `/metrics` (its dataflow API)
serves them too. Label values are bounded: topic names, roles, classes, severities, reason classes,
partitions of our topics. Never a device id, a user or raw reason text.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

PREFIX = "twinguard"

MESSAGES_IN = Counter(
    f"{PREFIX}_messages_in", "Input messages taken from Kafka (before decoding), per topic",
    ["topic"])
MESSAGES_OUT = Counter(
    f"{PREFIX}_messages_out", "Output messages handed to the producer, per output role",
    ["role"])
DEAD_LETTERS = Counter(
    f"{PREFIX}_dead_letters", "Rejected input messages written as dead letters, by the stage "
    "that rejected them and the class of the reason", ["stage", "reason"])
THREATS = Counter(
    f"{PREFIX}_threats", "Threat events written, by threat class and severity",
    ["threat", "severity"])
SUPPRESSED = Counter(
    f"{PREFIX}_threats_suppressed", "Threats analyst feedback hid (no threat event, no action), "
    "by threat class and the verdict's scope", ["threat", "scope"])
MODEL_SWAPS = Counter(
    f"{PREFIX}_model_swaps", "Model versions hot-swapped in from the registry, or refused",
    ["outcome"])
ACTIONS = Counter(
    f"{PREFIX}_actions", "Response actions written, by action type, tier and mode",
    ["action", "tier", "mode"])
BATCH_SECONDS = Histogram(
    f"{PREFIX}_batch_processing_seconds", "Wall time a step spent on one batch (a Bytewax "
    "activation), per step", ["step"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
DETECTION_LATENCY = Histogram(
    f"{PREFIX}_detection_latency_seconds", "Wall clock when a threat is written minus the start "
    "of the event-time window holding its first evidence (an upper bound on the time from the "
    "first attack message)",
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0))
CONSUMER_LAG = Gauge(
    f"{PREFIX}_consumer_lag_messages", "Messages in a source partition beyond the dataflow's "
    "position (high watermark minus next offset)", ["topic", "partition"])
TWINS_TRACKED = Gauge(
    f"{PREFIX}_twins_tracked", "Device twins held in this process's state shards")
MODEL = Info(f"{PREFIX}_model", "The detection model in use")
BUILD = Info(f"{PREFIX}_build", "twinguard and engine versions of this process")
