"""Who a twin says its device is, and whom a response may hit: decided by authentic messages only.

A message is authentic when its signature verifies (or it is unsigned and `require_signature` is
off). Forged and unsigned messages still count as what they are (tampering evidence in the device's
windows), but they never create a twin, never change its type, firmware or address, and never pick
the address a response action aims at. Actions aim at the observed peer of the offending traffic -
the foreign source or new destination in the threat's window - and never at an address the device
learned as its own, a destination the shard's devices learned as theirs (brokers, servers) or a
configured protected network.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from twinguard.operators.batches import OutMsg, RawBatch, TelemetryBatch
from twinguard.operators.decode.telemetry import dead_letter
from twinguard.operators.integrity.signatures import SIG_BAD
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.store import MAX_SERVERS, NO_TWIN_UNAUTHENTIC, TwinStore
from twinguard.schemas.device_types import DeviceTypeTable

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
STAGE = "twin"


def rejections(batch: TelemetryBatch, slots: I64, verdict: npt.NDArray[np.int8], store: TwinStore,
               types: DeviceTypeTable, topic: str, now_ms: int | None = None) -> list[OutMsg]:
    """A dead letter for every event `TwinStore.admit` turned away, saying why."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out = []
    for i in np.flatnonzero(verdict).tolist():
        device = batch.device_ids[i]
        claimed = types.types[int(batch.type_idx[i])].name
        if verdict[i] == NO_TWIN_UNAUTHENTIC:
            how = "a bad signature" if batch.sig_state[i] == SIG_BAD else "no signature"
            reason = (f"message with {how} for device {device!r}, which has no twin: not kept (a "
                      "twin starts with a device's first authentic, signed message)")
        else:
            own = types.types[int(store.arrays["istate"][slots[i], K.I_TYPE])].name
            reason = (f"device {device!r} is a {own} (its twin's type since its first authentic "
                      f"message); this signed message claims type {claimed!r}: rejected")
        raw = RawBatch(topic, int(batch.partition[i]), batch.offset[i:i + 1], [device.encode()],
                       [batch.raw[i] if batch.raw else b""])
        out.append(dead_letter(raw, 0, STAGE, reason, now_ms))
    return out


def update(store: TwinStore, slots: I64, batch: TelemetryBatch, authentic: Bools,
           allowlists: tuple[frozenset[str], ...]) -> None:
    """The twin's firmware and address from its authentic messages (a change of firmware also
    moves the device to that firmware's peer group)."""
    fws, src_ips = store.fws, store.src_ips
    for s, fw, ip, ok in zip(slots.tolist(), batch.fws, batch.src_ips, authentic.tolist(),
                             strict=True):
        if not ok:
            continue
        if fw is not None and fw != fws[s]:  # a change (rare): regroup its peer baseline
            store.set_firmware(s, fw, allowlists)
        if ip is not None:
            src_ips[s] = ip


def record_peers(store: TwinStore, slots: I64, batch: TelemetryBatch, authentic: Bools,
                 flags: npt.NDArray[np.int8]) -> None:
    """Remember per device its last authentic traffic from a foreign source and to a new
    destination, and the shard's usual destinations (its fleet's servers). `flags`: the kernels'
    per-event verdicts (kernels.PEER_*), taken as each event arrived."""
    if len(batch) == 0:
        return
    ts = batch.ts.tolist()
    for i in np.flatnonzero(authentic & ((flags & K.PEER_FOREIGN_SRC) != 0)).tolist():
        store.peer_src[int(slots[i])] = (str(batch.src_ips[i]), ts[i])
    for i in np.flatnonzero(authentic & ((flags & K.PEER_NEW_DST) != 0)).tolist():
        store.peer_dst[int(slots[i])] = (str(batch.dst_ips[i]), ts[i])
    if len(store.servers) < MAX_SERVERS:  # one row per distinct address: a few per batch
        usual = np.flatnonzero(authentic & ((flags & K.PEER_USUAL_DST) != 0))
        _, first = np.unique(batch.dst_hash[usual], return_index=True)
        store.servers.update(str(batch.dst_ips[i]) for i in usual[first].tolist())


def block_target(store: TwinStore, s: int, aim: str, since_ms: int,
                 protected: Iterable[Network] = ()) -> str | None:
    """The address a block may aim at for slot `s`: its foreign source ("source": not one the
    device learned as its own) or new destination ("destination") seen at or after `since_ms` (the
    threat's window), unless that is a learned fleet server or in a protected network; None = no
    target."""
    seen = (store.peer_dst if aim == "destination" else store.peer_src).get(s)
    if seen is None or seen[1] < since_ms:
        return None
    address = seen[0]
    if address in store.servers:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (decoding admits none): nothing to block
        return None
    return None if any(ip in net for net in protected) else address
