"""Dead-letter reasons -> a few reason classes: a bounded label set for metrics.

A reason's text names the offending value (a device id, a key, a byte count), so it can never be a
label itself. The first matching rule wins; anything new lands in `other` until a rule names it.
"""

from __future__ import annotations

STAGES = frozenset({"decode", "decode_activity", "twin", "desired_state", "intel"})
# (class, test on the reason text); ordered: the brake prefixes a quarantine note to any reason
RULES: tuple[tuple[str, str, str], ...] = (
    ("quarantined", "in", "quarantined"),
    ("empty", "prefix", "empty message"),
    ("too_large", "in", "max_message_bytes"),
    ("schema", "prefix", "schema:"),
    ("malformed_json", "prefix", "malformed JSON"),
    ("key_mismatch", "prefix", "message key"),
    ("unknown_device_type", "prefix", "unknown device type"),
    ("future_timestamp", "in", "in the future"),
    ("timestamp", "prefix", "ts "),
    ("bad_signal", "prefix", "signal "),
    ("bad_command", "prefix", "action "),
    ("unauthenticated_no_twin", "prefix", "message with "),
    ("type_conflict", "in", "this signed message claims type"),
    ("command_without_twin", "prefix", "command for "),
)
REASON_CLASSES = (*(name for name, _, _ in RULES), "other")
HEAD = 200  # the part of a reason the rules look at (the brake's note comes first)


def reason_class(reason: str) -> str:
    """The class of a dead letter's reason text; `other` when no rule matches."""
    head = reason[:HEAD]
    for name, how, text in RULES:
        if (head.startswith(text) if how == "prefix" else text in head):
            return name
    return "other"


def stage_label(stage: str) -> str:
    """The rejecting stage as a label: one of ours, else `other` (a dead letter is input data)."""
    return stage if stage in STAGES else "other"
