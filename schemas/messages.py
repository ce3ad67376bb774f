"""Message contracts for every topic, as msgspec Structs.

These Structs are the one definition: `python -m twinguard.schemas.export` writes the versioned JSON
Schema files in schemas/json/ from them, and a test fails if the files and the Structs ever differ.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from twinguard.schemas.fields import (
    DEVICE_ID_PATTERN,
    FW_PATTERN,
    IP_PATTERN,
    MAX_FW,
    MAX_IP,
    MAX_NAME,
    NAME_PATTERN,
    TARGET_PATTERN,
)

SCHEMA_VERSION = 1

DeviceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=DEVICE_ID_PATTERN,
                              description="Stable device identifier (also the Kafka key)")]
EpochMs = Annotated[int, Meta(ge=0, le=253_402_300_799_999, description="Milliseconds since the epoch")]
Count = Annotated[int, Meta(ge=0, le=2**53)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
IpAddress = Annotated[str, Meta(max_length=MAX_IP, pattern=IP_PATTERN,
                                description="IPv4 (dotted quad) or IPv6 address")]
Firmware = Annotated[str, Meta(min_length=1, max_length=MAX_FW, pattern=FW_PATTERN,
                               description="Firmware version")]
Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]


class Net(Struct, omit_defaults=True):
    """Network counters since the previous message."""

    src_ip: IpAddress | None = None
    dst_ip: IpAddress | None = None
    dst_port: Port | None = None
    bytes_in: Count = 0
    bytes_out: Count = 0
    packets_in: Count = 0
    packets_out: Count = 0
    connections: Count = 0


class Auth(Struct, omit_defaults=True):
    """Authentication attempts against the device since the previous message."""

    failures: Count = 0
    successes: Count = 0
    principal: Name | None = None


class Telemetry(Struct, omit_defaults=True):
    """twinguard.telemetry: one device report. `sig` = hex HMAC-SHA256 over `canonical_bytes()`."""

    device_id: DeviceId
    type: Annotated[str, Meta(min_length=1, max_length=64, description="Device type (schemas/device_types)")]
    ts: EpochMs | datetime
    seq: Count
    signals: dict[str, float]
    net: Net | None = None
    auth: Auth | None = None
    fw: Firmware | None = None
    sig: Annotated[str, Meta(max_length=128)] | None = None


class Activity(Struct, omit_defaults=True):
    """twinguard.activity: an operator command or login aimed at a device.

    Vocabulary: `action="set"` commands the device's desired state, `params` = signal name -> numeric
    set-point (signals and their tolerance, deadline and safe range in schemas/device_types/*.toml,
    section [control]); every other action (login, view, get_config, ack_alarm, firmware_update, ...)
    only feeds the user's behaviour profile; `[activity] dangerous_actions` lists the risky ones.
    """

    device_id: DeviceId
    ts: EpochMs | datetime
    user: Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN,
                              description="Who issued it")]
    action: Annotated[str, Meta(min_length=1, max_length=64, description="set, login, view, ...")]
    params: dict[str, float | str] = {}
    src_ip: IpAddress | None = None


class PolicyRule(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a `policy` intel entry changes for its cohort while it is live (operators/intel/policy.py).
    Tightening only unless `loosen` is true: a threshold above the default is ignored and tier `auto`
    is refused without it."""

    model_threshold: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    anomaly_z: Annotated[float, Meta(gt=0.0, le=1000.0)] | None = None
    tier: Annotated[str, Meta(pattern=r"^(auto|approval)$")] | None = None
    loosen: bool = False


class Intel(Struct, omit_defaults=True):
    """twinguard.intel (compacted, key = indicator): threat intelligence.

    kind `policy`: `indicator` names the cohort, `type=<device_type>` and/or `fw=<version>` joined by
    `,` (e.g. `type=plc,fw=2.1.0`), and `policy` says what changes for it (PolicyRule)."""

    indicator: str
    kind: Annotated[str, Meta(pattern=r"^(ip|cidr|firmware|policy)$")]
    severity: Annotated[str, Meta(pattern=r"^(low|medium|high|critical)$")] = "medium"
    note: str = ""
    expires_at: EpochMs | None = None
    policy: PolicyRule | None = None


class Feedback(Struct, omit_defaults=True):
    """twinguard.feedback (compacted, key = threat id: an analyst's latest verdict wins): an analyst
    verdict on a threat. `twinguard feedback` copies the threat's fields (device, type, class,
    detectors, model version, window end) from the threats topic and the firmware from its twin;
    the dataflow refuses a record whose fields do not reproduce `threat_id` (an unknown threat).
    A false_positive or benign verdict suppresses that threat class for its `scope` until
    `ts + ttl_ms`: the device, every device of its type, or its cohort (type + firmware)."""

    threat_id: str
    verdict: Annotated[str, Meta(pattern=r"^(true_positive|false_positive|benign|benign_positive)$",
                                 description="benign_positive: older spelling of benign")]
    analyst: str
    ts: EpochMs
    threat: str | None = None
    note: str = ""
    scope: Annotated[str, Meta(pattern=r"^(device|type|cohort)$")] = "device"
    ttl_ms: Annotated[int, Meta(ge=0, description="suppression lifetime; 0: [feedback] default_ttl")] = 0
    device_id: DeviceId | None = None
    device_type: str | None = None
    fw: Firmware | None = None  # the device's firmware when the verdict was given (cohort scope)
    detectors: list[str] = []
    model_version: str | None = None
    window_end: EpochMs | None = None


class ModelRecord(Struct, omit_defaults=True):
    """twinguard.models (compacted, key = model name): the registry. The latest record per name is
    the version every running dataflow scores with; `files` are sha256-verified on load."""

    name: str
    version: str
    location: Annotated[str, Meta(min_length=1, description="model directory: a path or file:// URI "
                                  "every process can read")]
    files: dict[str, str]  # file name -> sha256 (model.ubj, metadata.json, ...)
    promoted_at: EpochMs
    promoted_by: str = ""
    feature_schema: str = ""
    metrics: dict[str, float] = {}
    note: str = ""
    schema_version: int = SCHEMA_VERSION


class Contribution(Struct):
    feature: str
    value: float
    contribution: float


class SourceRange(Struct):
    partition: int
    first_offset: int
    last_offset: int


class ThreatEvent(Struct):
    """twinguard.threats: one detection with its explanation. `id` is deterministic."""

    id: str
    device_id: DeviceId
    device_type: str
    threat: str
    severity: Annotated[str, Meta(pattern=r"^(low|medium|high|critical)$")]
    score: Probability
    probabilities: dict[str, Probability]
    detectors: list[str]
    reasons: list[str]
    features: list[Contribution]
    model_version: str
    feature_schema: str
    window_start: EpochMs
    window_end: EpochMs
    detected_at: EpochMs
    actions: list[str]
    source: SourceRange | None = None
    schema_version: int = SCHEMA_VERSION
    user: str | None = None  # the operator behind it (insider threats)


class Action(Struct):
    """twinguard.actions: an automated response (dry-run unless enabled)."""

    id: str
    threat_id: str
    device_id: DeviceId
    action: str
    target: Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=TARGET_PATTERN,
                                description="The device id, user or address the action aims at")]
    tier: Annotated[str, Meta(pattern=r"^(auto|approval)$")]
    dry_run: bool
    reason: str
    issued_at: EpochMs
    schema_version: int = SCHEMA_VERSION
    # the threat class that asked for it (absent in older actions): policy tiers, the guard's
    # reasons and analysts see why a device is acted on
    threat: Annotated[str, Meta(max_length=64, pattern=r"^[a-z_]{1,64}$")] | None = None


RESULT_STATUSES = ("pending", "in_progress", "succeeded", "failed", "skipped", "cancelled", "reverted")


class ActionResult(Struct, omit_defaults=True):
    """twinguard.action_results (compacted, key = action id): one record per step of an action.

    The latest record of an action is its whole state (the request included), so the respond service
    rebuilds pending approvals, retries and containment TTLs from this topic after a restart. `reason`
    explains the decision; `error` says what failed; `expires_at` is when a containment auto-reverts
    unless an analyst confirms it."""

    action_id: str
    status: Annotated[str, Meta(pattern="^(" + "|".join(RESULT_STATUSES) + ")$")]
    step: Annotated[str, Meta(pattern=r"^(decide|execute|revert)$")]
    reason: str
    at: EpochMs
    request: Action
    performs: str = ""  # the step the actuator runs (a life-critical device's quarantine: failsafe)
    actuator: str = ""
    device_type: str | None = None
    hold: Annotated[str, Meta(pattern=r"^(approval|guard|rate)$")] | None = None
    error: str | None = None
    attempts: Count = 0
    retry_at: EpochMs | None = None
    expires_at: EpochMs | None = None
    decided_by: str = "policy"
    confirmed: bool = False
    dry_run: bool = True
    executed_at: EpochMs | None = None
    detail: dict[str, str] = {}
    schema_version: int = SCHEMA_VERSION


class ActionDecision(Struct, omit_defaults=True):
    """twinguard.action_decisions (key = action id): an analyst's approve, reject, revert or confirm
    (confirm keeps a containment past its TTL)."""

    action_id: str
    decision: Annotated[str, Meta(pattern=r"^(approve|reject|revert|confirm)$")]
    analyst: Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]
    at: EpochMs
    note: str = ""


class Command(Struct, omit_defaults=True):
    """twinguard.commands (key = device id): a command for the device's gateway. `failsafe` carries
    the device type's safe state (schemas/device_types/*.toml, [response]); `release` undoes one."""

    command_id: str
    action_id: str
    device_id: DeviceId
    command: Annotated[str, Meta(pattern=r"^[a-z_]{1,32}$")]
    target: str
    issued_at: EpochMs
    safe_state: str | None = None
    setpoints: dict[str, float] = {}
    schema_version: int = SCHEMA_VERSION


class LastThreat(Struct):
    id: str
    threat: str
    severity: str
    at: EpochMs


RESPONSE_STATES = ("quarantined", "credentials_locked", "key_rotated", "failsafe", "rate_limited",
                   "ip_blocked", "user_suspended")


class ResponseState(Struct, omit_defaults=True):
    """A containment in force on a device, from twinguard.action_results: what, since when, until
    when it auto-reverts (absent: confirmed, kept until reverted by hand), by which action and who."""

    state: Annotated[str, Meta(pattern="^(" + "|".join(RESPONSE_STATES) + ")$")]
    action_id: str
    action: str
    by: str
    since: EpochMs
    until: EpochMs | None = None
    threat: str | None = None
    active: Annotated[int, Meta(ge=1)] = 1  # containments in force (this one is the latest)


class TwinState(Struct):
    """twinguard.twins (compacted, key = device_id): the latest enriched twin."""

    device_id: DeviceId
    device_type: str
    version: Count
    last_seen: EpochMs
    seq: int
    fw: str | None
    src_ip: str | None
    reported: dict[str, float | None]
    status: Annotated[str, Meta(pattern=r"^(learning|normal|suspect|under_attack)$")]
    threats_total: Count
    last_threat: LastThreat | None
    baseline_windows: Count
    updated_at: EpochMs
    schema_version: int = SCHEMA_VERSION
    desired: dict[str, float] = {}  # last commanded set-point per signal (activity `set`)
    commands: Count = 0  # activity messages folded into this twin
    risk: Annotated[float, Meta(ge=0.0, le=100.0, description="Risk score (operators/twin/risk.py)")] = 0.0
    risk_reasons: list[str] = []  # its top reasons, most important first
    response: ResponseState | None = None  # set while a response action contains the device
    suppressed_threats: Count = 0  # threats analyst feedback hid (no threat event, no action)
    last_suppressed: LastThreat | None = None  # the latest of them (its id as if it were emitted)


class WindowRecord(Struct):
    """twinguard.windows (key = device_id, off by default): one closed window for the archive, its
    features (schemas/features.py names; null = missing), twin context and the model's verdict."""

    device_id: DeviceId
    device_type: str
    fw: str | None
    risk: Annotated[float, Meta(ge=0.0, le=100.0)]
    window_start: EpochMs
    window_end: EpochMs
    features: dict[str, float | None]
    feature_schema: str
    model_class: str  # the model's most probable class
    model_probability: Probability
    decided: str  # what the engine decided (normal = no threat)
    model_version: str
    schema_version: int = SCHEMA_VERSION


class DeadLetter(Struct):
    """twinguard.deadletter: a rejected input message, its original bytes (or, for a long one, their
    first `value_b64` bytes plus the whole message's length and sha256: a dead letter must fit the
    broker's message size whatever the input was)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    stage: str
    reason: str
    value_b64: str
    value_preview: str
    rejected_at: EpochMs
    schema_version: int = SCHEMA_VERSION
    value_length: int | None = None  # bytes of the original message (absent in older dead letters)
    value_sha256: str | None = None  # hex sha256 of the whole original message
    truncated: bool = False  # value_b64 holds only a prefix of the original


TOPIC_SCHEMAS: dict[str, type[Struct]] = {
    "telemetry": Telemetry,
    "activity": Activity,
    "intel": Intel,
    "feedback": Feedback,
    "models": ModelRecord,
    "twins": TwinState,
    "threats": ThreatEvent,
    "actions": Action,
    "deadletter": DeadLetter,
    "windows": WindowRecord,
    "action_results": ActionResult,
    "action_decisions": ActionDecision,
    "commands": Command,
}


def canonical_bytes(event: Telemetry) -> bytes:
    """What a device signs: the event without `sig`, as JSON with sorted keys and no whitespace."""
    return msgspec.json.encode(msgspec.structs.replace(event, sig=None), order="sorted")
