"""The device's response state in its twin: the containments `twinguard respond` executed on it.

Folded from twinguard.action_results per (device, action id): an executed, real (not dry-run)
containment puts the device in its state (quarantined until its TTL, ...); a revert - by an analyst
or the TTL - clears it. A confirm keeps the state with no end. The twin shows the latest one in
force and how many are; its `until` is when `respond` will auto-revert it (a stopped `respond`
reverts late, so the twin says what the last result record said, never guesses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.batches import OutMsg
from twinguard.operators.decode.results import ResultBatch
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.messages import ActionResult, ResponseState, TwinState

# the state each performed step leaves a device in (the others - resync, investigate - leave none)
STATES = {"quarantine": "quarantined", "lock_credentials": "credentials_locked",
          "rotate_key": "key_rotated", "failsafe": "failsafe", "rate_limit": "rate_limited",
          "block_ip": "ip_blocked", "suspend_user": "user_suspended"}
_enc = msgspec.json.Encoder()


def fold(entries: dict[str, ResponseState], rec: ActionResult) -> bool:
    """Apply one result record to a device's containments (action id -> state); whether they changed.
    An executed, real containment enters; its revert leaves; anything else (pending, dry runs,
    failures, steps still running) changes nothing."""
    if rec.status == "reverted":
        return entries.pop(rec.action_id, None) is not None
    state = STATES.get(rec.performs)
    if rec.status != "succeeded" or rec.step != "execute" or rec.dry_run or state is None:
        return False
    entries[rec.action_id] = ResponseState(
        state=state, action_id=rec.action_id, action=rec.performs, by=rec.decided_by,
        since=rec.executed_at or rec.at, until=rec.expires_at, threat=rec.request.threat)
    return True


def current(entries: Mapping[str, ResponseState] | None) -> ResponseState | None:
    """What the twin shows: the most recent containment in force, with how many are."""
    if not entries:
        return None
    latest = max(entries.values(), key=lambda e: (e.since, e.action_id))
    return msgspec.structs.replace(latest, active=len(entries))


def apply_results(store: TwinStore, batch: ResultBatch,
                  twin_states: Callable[[npt.NDArray[np.int64], int], list[TwinState]],
                  now_ms: int) -> list[OutMsg]:
    """Fold a shard's action results into its devices' response state; the twins that changed
    (of devices with a twin: one seen later shows its state from its first twin on).
    `twin_states` = ShardEngine.twin_states (passed in: the engine imports `current` from here)."""
    changed: set[str] = set()
    for device, rec in zip(batch.device_ids, batch.records, strict=True):
        entries = store.responses.setdefault(device, {})
        if fold(entries, rec):
            changed.add(device)
        if not entries:
            del store.responses[device]
    slots = [store.index[d] for d in sorted(changed) if d in store.index]
    if not slots:
        return []
    return [OutMsg("twins", t.device_id.encode(), _enc.encode(t))
            for t in twin_states(np.array(slots, dtype=np.int64), now_ms)]
