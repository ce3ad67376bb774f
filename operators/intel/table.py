"""Threat intelligence as reference data: bad IPs and CIDRs, vulnerable firmware, policy entries.

Why a table replicated in every process and not a step of the keyed dataflow: intel is keyed by
indicator while telemetry is keyed (sharded) by device, and every shard needs all of it (broadcast).
It is small (thousands of entries) and changes rarely. Joining it inside Bytewax would mean re-keying
every telemetry event by address (a shuffle per event) or copying the table into every shard's
state (and every snapshot). Instead one reader thread per process follows the compacted topic from
its beginning (operators/intel/reader.py), so the table is rebuilt on every start and needs no
recovery state, and the engines read the current immutable `IntelIndex` once per batch.
The price: a change reaches the engines one poll later, and a replay run with a different table can
explain threats differently (threat ids never depend on intel).

Indicators (`twinguard.schemas.messages.Intel`): `ip` an address; `cidr` a network (host bits ignored);
`firmware` "<version>" for every device type or "<device_type>:<version>" for one; `policy` a cohort
("type=<device_type>,fw=<version>") whose detection thresholds and response tier the entry's
`policy` tightens while live (grammar: operators/intel/policy.py). An entry stops matching at
`expires_at` (compared with the event's time); a tombstone (empty value) on the topic removes it.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from twinguard.operators.decode.bounded import decode_within
from twinguard.operators.intel.policy import Cohort, PolicyRejectError, check_rule, parse_cohort
from twinguard.schemas.messages import Intel, PolicyRule

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(Intel)
MEMO_LIMIT = 100_000  # distinct addresses remembered per index (cleared when full)
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IntelLimits:
    """What one intel record may be: a 2 MB note made every matching twin unwritable, and one
    `0.0.0.0/0` entry put every device at risk."""

    max_record_bytes: int = 4096
    max_note_chars: int = 500
    allow_broad_cidrs: bool = False  # accept IPv4 networks shorter than /8, IPv6 shorter than /32


DEFAULT_LIMITS = IntelLimits()
BROADEST_PREFIX = {4: 8, 6: 32}  # ip version -> shortest prefix accepted without allow_broad_cidrs


class IntelRejectError(ValueError):
    """An intel message breaks the contract; str(error) is the dead-letter reason."""


class IntelFileError(ValueError):
    """An intel file has a bad line; the message names the file and the line."""


@dataclass(frozen=True)
class IntelEntry:
    indicator: str  # normalised (addresses and networks in their canonical text form)
    kind: str
    severity: str
    note: str
    expires_at: int | None
    policy: PolicyRule | None = None  # kind policy: what it changes for the cohort

    def live(self, at_ms: int) -> bool:
        return self.expires_at is None or at_ms < self.expires_at


@dataclass(frozen=True)
class IntelHit:
    """Row `row` of a batch talked to (or was reached from) `address`, listed by `entry`."""

    row: int
    address: str
    entry: IntelEntry


def parse_intel(value: bytes | None, key: bytes | None = None,
                limits: IntelLimits = DEFAULT_LIMITS) -> IntelEntry | None:
    """The entry an intel message carries; None for a tombstone. Raises IntelRejectError."""
    if not value:
        if key is None:
            raise IntelRejectError("empty intel message without a key: nothing to delete")
        return None
    msg = decode_within(_decoder, value, limits.max_record_bytes, "intel.max_record_bytes",
                        "intel record", IntelRejectError)
    if len(msg.note) > limits.max_note_chars:
        raise IntelRejectError(f"note of {len(msg.note)} characters exceeds "
                               f"intel.max_note_chars={limits.max_note_chars}")
    entry = _normalise(msg, limits.allow_broad_cidrs)
    if key is not None and key.decode("utf-8", "replace") not in (msg.indicator, entry.indicator):
        raise IntelRejectError(f"message key {key[:64]!r} does not match indicator "
                               f"{msg.indicator!r} (the compacted topic is keyed by indicator)")
    return entry


def _normalise(msg: Intel, allow_broad_cidrs: bool) -> IntelEntry:
    ind = msg.indicator.strip()
    try:
        if msg.kind == "ip":
            ind = str(ipaddress.ip_address(ind))
        elif msg.kind == "cidr":
            net = ipaddress.ip_network(ind, strict=False)
            ind = str(net)
            shortest = BROADEST_PREFIX[net.version]
            if net.prefixlen < shortest and not allow_broad_cidrs:
                raise IntelRejectError(
                    f"cidr {ind} is broader than /{shortest} (IPv{net.version}): it would flag "
                    "nearly every address; set intel.allow_broad_cidrs = true if meant")
        elif msg.kind == "policy":
            ind = parse_cohort(ind).indicator
        check_rule(msg.kind, msg.policy)
    except PolicyRejectError as e:
        raise IntelRejectError(str(e)) from None
    except ValueError as e:
        if isinstance(e, IntelRejectError):
            raise
        raise IntelRejectError(f"indicator {msg.indicator!r} is not a valid {msg.kind}: {e}") from None
    if not ind or (msg.kind == "firmware" and ind.endswith(":")):
        raise IntelRejectError(f"{msg.kind} indicator {msg.indicator!r} is empty; firmware "
                               "indicators are '<version>' or '<device_type>:<version>'")
    return IntelEntry(ind, msg.kind, msg.severity, msg.note, msg.expires_at, msg.policy)


@dataclass
class IntelIndex:
    """An immutable view of the table built for fast lookups (the memo is only a cache)."""

    ips: dict[str, IntelEntry] = field(default_factory=dict)
    # (ip version, prefix length) -> network address as int -> entry; longest prefixes first
    nets: dict[tuple[int, int], dict[int, IntelEntry]] = field(default_factory=dict)
    firmware: dict[tuple[str, str], IntelEntry] = field(default_factory=dict)
    policies: dict[str, IntelEntry] = field(default_factory=dict)
    cohorts: list[tuple[Cohort, IntelEntry]] = field(default_factory=list)  # the policies, parsed
    _memo: dict[str, tuple[IntelEntry, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, entries: Iterable[IntelEntry]) -> IntelIndex:
        idx = cls()
        nets: dict[tuple[int, int], dict[int, IntelEntry]] = {}
        for e in entries:
            if e.kind == "ip":
                idx.ips[e.indicator] = e
            elif e.kind == "cidr":
                net = ipaddress.ip_network(e.indicator)
                nets.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = e
            elif e.kind == "firmware":
                dtype, _, version = e.indicator.rpartition(":")
                idx.firmware[(dtype, version)] = e
            else:
                idx.policies[e.indicator] = e
                idx.cohorts.append((parse_cohort(e.indicator), e))
        idx.nets = {k: nets[k] for k in sorted(nets, key=lambda k: -k[1])}
        return idx

    def __len__(self) -> int:
        return (len(self.ips) + sum(len(v) for v in self.nets.values()) + len(self.firmware)
                + len(self.policies))

    @property
    def has_addresses(self) -> bool:
        return bool(self.ips or self.nets)

    def lookup_ip(self, address: str, at_ms: int) -> IntelEntry | None:
        """The most specific live entry listing `address` (exact IP, then longest CIDR)."""
        for e in self._candidates(address):
            if e.live(at_ms):
                return e
        return None

    def lookup_firmware(self, device_type: str, version: str, at_ms: int) -> IntelEntry | None:
        """A live vulnerable-firmware entry for this type (or for every type)."""
        for key in ((device_type, version), ("", version)):
            e = self.firmware.get(key)
            if e is not None and e.live(at_ms):
                return e
        return None

    def policies_for(self, device_type: str, fw: str | None, at_ms: int
                     ) -> list[tuple[str, PolicyRule]]:
        """(indicator, rule) of every live policy whose cohort holds this device."""
        return [(e.indicator, e.policy) for c, e in self.cohorts
                if e.policy is not None and e.live(at_ms) and c.matches(device_type, fw)]

    def _candidates(self, address: str) -> tuple[IntelEntry, ...]:
        found = self._memo.get(address)
        if found is not None:
            return found
        try:
            ip: IpAddr | None = ipaddress.ip_address(address)
        except ValueError:
            ip = None  # not an address (a hostname, garbage): nothing can match
        out: list[IntelEntry] = []
        if ip is not None:
            exact = self.ips.get(str(ip))
            if exact is not None:
                out.append(exact)
            bits, value = ip.max_prefixlen, int(ip)
            for (version, plen), table in self.nets.items():
                if version == ip.version:
                    e = table.get(value >> (bits - plen) << (bits - plen))
                    if e is not None:
                        out.append(e)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        found = self._memo[address] = tuple(out)
        return found

    def match_rows(self, src_ips: Sequence[str | None], dst_ips: Sequence[str | None],
                   ts: npt.NDArray[np.int64]) -> list[IntelHit]:
        """Rows whose destination (else source) address is listed and live at the row's time.
        Each distinct address is looked up once per batch; rows are scanned only on a hit."""
        if not self.has_addresses:
            return []
        listed = {a for a in {*src_ips, *dst_ips} if a is not None and self._candidates(a)}
        if not listed:
            return []
        hits: list[IntelHit] = []
        for i, (src, dst) in enumerate(zip(src_ips, dst_ips, strict=True)):
            for a in (dst, src):
                if a is not None and a in listed:
                    e = self.lookup_ip(a, int(ts[i]))
                    if e is not None:
                        hits.append(IntelHit(i, a, e))
                        break
        return hits


class IntelTable:
    """The mutable table (key -> entry) a loader or reader fills; engines read `current`.

    `publish` swaps in a freshly built index, so readers on other threads never see a half-built
    one (a reference swap is atomic in Python)."""

    def __init__(self, entries: Iterable[IntelEntry] = ()) -> None:
        self._entries: dict[str, IntelEntry] = {e.indicator: e for e in entries}
        self._lock = threading.Lock()
        self.current = IntelIndex.build(self._entries.values())
        self.failure: str | None = None  # set when the reader keeping it current stopped for good

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, key: str, entry: IntelEntry | None) -> None:
        """Insert or replace the entry for `key`; None (a tombstone) removes it."""
        with self._lock:
            if entry is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = entry

    def publish(self, drop_expired_at: int | None = None) -> None:
        """Rebuild the index; entries expired at `drop_expired_at` (ms) are left out of it.
        Lookups check expiry against each event's time anyway, so replays of old data still
        match what was live then unless the entry was dropped."""
        with self._lock:
            entries = list(self._entries.values())
        if drop_expired_at is not None:
            entries = [e for e in entries if e.live(drop_expired_at)]
        self.current = IntelIndex.build(entries)

    @classmethod
    def from_file(cls, path: str | Path, limits: IntelLimits = DEFAULT_LIMITS) -> IntelTable:
        """Entries from a JSON-lines file ('#' comments and blank lines allowed)."""
        p = Path(path)
        table = cls()
        for _, entry in read_feed(p, limits):
            table.apply(entry.indicator, entry)
        table.publish()
        log.info("loaded %d intel entries from %s", len(table), p)
        return table


def read_feed(path: Path, limits: IntelLimits = DEFAULT_LIMITS) -> Iterator[tuple[bytes, IntelEntry]]:
    """(line, entry) per entry of a JSON-lines intel file ('#' comments and blank lines skipped);
    a bad line stops it with IntelFileError naming file and line."""
    if not path.is_file():
        raise IntelFileError(f"intel file {path} does not exist")
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            entry = parse_intel(line, limits=limits)
        except IntelRejectError as e:
            raise IntelFileError(f"{path}:{n}: {e}") from None
        assert entry is not None  # noqa: S101 - a non-empty line is never a tombstone
        yield line.strip(), entry
