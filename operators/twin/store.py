"""Per-shard twin state: preallocated numpy arrays indexed by a dense device slot.

A few large arrays snapshot cheaply (Bytewax copies state at every epoch); per-device Python objects
are limited to the id, firmware and source-address strings the outputs need.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.layout import device_arrays
from twinguard.schemas.device_types import MAX_SIGNALS
from twinguard.schemas.messages import ResponseState

I64 = npt.NDArray[np.int64]
MAX_PEER_GROUPS = 256  # (type, firmware) groups per shard; devices beyond share their type's row
MAX_SERVERS = 1024  # learned fleet destinations per shard (what responses never block)
# TwinStore.admit verdicts: folded into a twin, or rejected (and why)
ADMITTED, NO_TWIN_UNAUTHENTIC, TYPE_CHANGED = 0, 1, 2


@dataclass
class TwinStore:
    """Twin + window + baseline state of every device in one shard."""

    n_types: int
    ring_len: int
    capacity: int = 64
    width: int = MAX_SIGNALS  # signal columns (DeviceTypeTable.width)
    size: int = 0
    index: dict[str, int] = field(default_factory=dict)
    device_ids: list[str] = field(default_factory=list)
    fws: list[str | None] = field(default_factory=list)
    src_ips: list[str | None] = field(default_factory=list)
    last_threat_ids: list[str | None] = field(default_factory=list)
    # slot -> (address, severity, note, event time) of its worst intel-listed contact (sparse)
    intel_hits: dict[int, tuple[str, str, str, int]] = field(default_factory=dict)
    # per source partition: highest authentic event time (drives window closing) and the
    # wall-clock second it last advanced (idle partitions still close their windows)
    part_max: I64 = field(default_factory=lambda: np.full(8, -1, dtype=np.int64))
    part_wall: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(8))
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    unresolved: list[Any] = field(default_factory=list)  # commands for devices not seen yet
    unresolved_at: list[float] = field(default_factory=list)  # wall time each was parked
    # slot -> (address, event time) of the device's last authentic traffic from a source address
    # / to a destination it does not normally use: what a response may block (sparse)
    peer_src: dict[int, tuple[str, int]] = field(default_factory=dict)
    peer_dst: dict[int, tuple[str, int]] = field(default_factory=dict)
    # the destinations the shard's devices learned as their own (brokers, servers): never blocked
    servers: set[str] = field(default_factory=set)
    # peer baselines: one row per type, then one per (type, firmware) group (kernels.I_PEER)
    peer_groups: dict[tuple[int, str], int] = field(default_factory=dict)
    # device -> action id -> containment in force (operators/twin/response.py; sparse)
    responses: dict[str, dict[str, ResponseState]] = field(default_factory=dict)
    # analyst feedback (operators/feedback/apply.py), sparse: slot -> (threats hidden, the last
    # one's id, class, window end), and slot -> ts of the benign verdict whose re-learning was done
    suppressed: dict[int, tuple[int, str, int, int]] = field(default_factory=dict)
    relearned: dict[int, int] = field(default_factory=dict)
    peer: np.ndarray = field(init=False)
    peer_n: I64 = field(init=False)

    def __post_init__(self) -> None:
        if not self.arrays:
            self.arrays = self._alloc(self.capacity)
        n_base = K.B_SIG0 + self.width
        if not hasattr(self, "peer"):
            self.peer = np.zeros((self.n_types, n_base, 2))
            self.peer_n = np.zeros(self.n_types, dtype=np.int64)

    def _alloc(self, cap: int) -> dict[str, np.ndarray]:
        return device_arrays(cap, self.width, self.ring_len)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self.capacity)
        fresh = self._alloc(cap)
        for name, arr in self.arrays.items():
            fresh[name][: self.size] = arr[: self.size]
        self.arrays, self.capacity = fresh, cap

    def slots_for(self, device_ids: list[str], type_idx: I64) -> I64:
        """Dense slot per event, allocating slots for new devices (type fixed at first sight)."""
        index = self.index
        try:  # the common case, every device known: one C-level pass
            return np.fromiter(map(index.__getitem__, device_ids), np.int64, len(device_ids))
        except KeyError:
            pass
        for i, d in enumerate(device_ids):  # new devices get slots in order of first sight
            if d not in index:
                self._add(d, int(type_idx[i]))
        return np.fromiter(map(index.__getitem__, device_ids), np.int64, len(device_ids))

    def admit(self, device_ids: list[str], type_idx: I64, authentic: npt.NDArray[np.bool_]
              ) -> tuple[I64, npt.NDArray[np.int8]]:
        """(slot per event, -1 if none; verdict per event). A device gets a twin from its first
        authentic message only, so forged or unsigned traffic under random ids costs no state
        (NO_TWIN_UNAUTHENTIC); an authentic message claiming another type than its twin's is
        TYPE_CHANGED. Both verdicts are rejections the caller dead-letters."""
        index = self.index
        try:  # the common case, every device known: one C-level pass
            slots = np.fromiter(map(index.__getitem__, device_ids), np.int64, len(device_ids))
        except KeyError:
            slots = np.array([self._admit_one(d, int(t), bool(ok)) for d, t, ok in zip(
                device_ids, type_idx.tolist(), authentic.tolist(), strict=True)], dtype=np.int64)
        verdict = np.where(slots < 0, NO_TWIN_UNAUTHENTIC, ADMITTED).astype(np.int8)
        twin_type = self.arrays["istate"][np.maximum(slots, 0), K.I_TYPE]
        verdict[(slots >= 0) & authentic & (twin_type != type_idx)] = TYPE_CHANGED
        return slots, verdict

    def _admit_one(self, device_id: str, type_idx: int, authentic: bool) -> int:
        s = self.index.get(device_id)
        if s is None:
            return self._add(device_id, type_idx) if authentic else -1
        return s

    def _add(self, device_id: str, type_idx: int) -> int:
        if self.size == self.capacity:
            self._grow(self.size + 1)
        s = self.size
        self.index[device_id] = s
        self.device_ids.append(device_id)
        self.fws.append(None)
        self.src_ips.append(None)
        self.last_threat_ids.append(None)
        self.arrays["istate"][s, K.I_TYPE] = type_idx
        self.size += 1
        return s

    def set_firmware(self, s: int, fw: str, allowlists: tuple[frozenset[str], ...] = ()) -> None:
        """Slot s reports firmware `fw`: remember it and put s in its (type, firmware) peer group.
        Firmware off the type's allowlist forms no group (a forger must not mint peer groups)."""
        if self.fws[s] == fw:
            return
        self.fws[s] = fw
        t = int(self.arrays["istate"][s, K.I_TYPE])
        row = self.peer_groups.get((t, fw))
        if row is None:
            allowed = allowlists[t] if t < len(allowlists) else frozenset()
            if (allowed and fw not in allowed) or len(self.peer_groups) >= MAX_PEER_GROUPS:
                self.arrays["istate"][s, K.I_PEER] = 0  # compared with its whole type
                return
            row = self.peer_groups[(t, fw)] = self.peer.shape[0]
            self.peer = np.concatenate([self.peer, np.zeros((1, *self.peer.shape[1:]))])
            self.peer_n = np.append(self.peer_n, 0)
        self.arrays["istate"][s, K.I_PEER] = row + 1

    def ensure_partitions(self, highest: int) -> None:
        """Room in part_max/part_wall for partition ids up to `highest`."""
        if highest >= self.part_max.size:
            grow = highest + 1 - self.part_max.size
            self.part_max = np.concatenate([self.part_max, np.full(grow, -1, dtype=np.int64)])
            self.part_wall = np.concatenate([self.part_wall, np.zeros(grow)])

    @property
    def max_ts(self) -> int:
        """Highest authentic event time over all partitions (-1 before any)."""
        return int(self.part_max.max())

    def kernel_state(self) -> tuple[np.ndarray, ...]:
        """The arrays update_batch takes, in its argument order."""
        a = self.arrays
        return (a["istate"], a["acc"], a["sacc"], a["last_sig"], a["last_sig_ts"], a["ewma"],
                a["ports"], a["ring"], a["ring_ws"], a["ring_ports"], a["base"], self.peer,
                self.peer_n)

    def snapshot(self) -> TwinStore:
        """An independent copy for Bytewax recovery (arrays trimmed to the used slots)."""
        snap = copy.copy(self)
        snap.arrays = {k: v[: self.size].copy() for k, v in self.arrays.items()}
        snap.capacity = max(self.size, 1)
        if self.size == 0:
            snap.arrays = self._alloc(1)
        snap.index, snap.device_ids = dict(self.index), list(self.device_ids)
        snap.fws, snap.src_ips = list(self.fws), list(self.src_ips)
        snap.last_threat_ids = list(self.last_threat_ids)
        snap.unresolved = list(self.unresolved)  # items are never mutated, only replaced
        snap.unresolved_at = list(self.unresolved_at)
        snap.peer_src, snap.peer_dst = dict(self.peer_src), dict(self.peer_dst)
        snap.servers = set(self.servers)
        snap.intel_hits = dict(self.intel_hits)
        snap.responses = {d: dict(e) for d, e in self.responses.items()}
        snap.peer_groups = dict(self.peer_groups)
        snap.suppressed, snap.relearned = dict(self.suppressed), dict(self.relearned)
        snap.peer, snap.peer_n = self.peer.copy(), self.peer_n.copy()
        snap.part_max, snap.part_wall = self.part_max.copy(), self.part_wall.copy()
        return snap

    def upgrade(self, allowlists: tuple[frozenset[str], ...] = ()) -> TwinStore:
        """A store restored from a snapshot of an older version gains the arrays and fields added
        since, at their initial values (so a recovery store survives an upgrade)."""
        for f in dataclasses.fields(self):
            if not hasattr(self, f.name) and f.default_factory is not dataclasses.MISSING:
                setattr(self, f.name, f.default_factory())
        for name, arr in self._alloc(self.capacity).items():
            old = self.arrays.setdefault(name, arr)
            if old.shape[1:] != arr.shape[1:] and old.ndim == arr.ndim:
                # columns appended since (e.g. istate/acc): old values kept, new ones initial
                cut = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, arr.shape, strict=True))
                arr[cut] = old[cut]
                self.arrays[name] = arr
        fws, self.fws = self.fws, [None] * len(self.fws)
        for s, fw in enumerate(fws):  # peer groups (older stores had none)
            if fw is not None:
                self.set_firmware(s, fw, allowlists)
        return self

    def nbytes(self) -> int:
        """Bytes held in arrays (state per device = nbytes / size)."""
        return sum(v.nbytes for v in self.arrays.values()) + self.peer.nbytes


