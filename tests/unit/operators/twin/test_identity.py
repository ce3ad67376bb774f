"""Only authentic messages shape a twin: made messages (signed, forged, unsigned) decoded and fed to
a ShardEngine; twins, dead letters, risk and response actions checked."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import msgspec
import numpy as np
import pytest

from twinguard.operators.batches import OutMsg, RawBatch
from twinguard.operators.decode.fast import decode_batch
from twinguard.operators.detect.policy import NO_PEER, response_actions
from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.settings import ResponseConfig
from twinguard.operators.twin.engine import ShardEngine
from twinguard.pipelines.config import load_config
from twinguard.pipelines.flow import Runtime
from twinguard.schemas.messages import Telemetry, TwinState, canonical_bytes

RT = Runtime.from_config(load_config(env={}), scorer=Scorer.rules_only())
T0 = 1_795_000_000_000
DEV, HOME, BROKER = "thermostat-000001", "10.16.0.2", "10.0.0.10"
SIGNALS = {"temperature_c": 21.0, "setpoint_c": 21.0, "humidity_pct": 45.0, "heating": 0.0}


def message(t_s: float, seq: int, sign: str = "good", device: str = DEV, dtype: str = "thermostat",
            **over: Any) -> bytes:
    """One telemetry message: sign = good, bad (forged signature) or none."""
    doc: dict[str, Any] = {"device_id": device, "type": dtype, "ts": T0 + int(t_s * 1000), "seq": seq,
                           "signals": dict(SIGNALS) if dtype == "thermostat" else {},
                           "net": {"src_ip": HOME, "dst_ip": BROKER, "dst_port": 8883,
                                   "bytes_out": 220, "bytes_in": 90, "connections": 1},
                           "fw": "4.2.0"}
    for k, v in over.items():
        if k in ("src_ip", "dst_ip", "bytes_out", "dst_port"):
            doc["net"][k] = v
        else:
            doc[k] = v
    if sign != "none":
        good = RT.keys.sign(device, canonical_bytes(msgspec.convert(doc, Telemetry)))
        doc["sig"] = good if sign == "good" else "0" * 64
    return json.dumps(doc).encode()


class Shard:
    """A ShardEngine fed decoded messages as one source partition would deliver them."""

    def __init__(self, response: ResponseConfig | None = None) -> None:
        ctx = RT.engine if response is None else replace(RT.engine, response=response)
        self.engine = ShardEngine.fresh(ctx)
        self.offset = 0
        self.out: list[OutMsg] = []

    def feed(self, values: list[bytes]) -> list[OutMsg]:
        raw = RawBatch("tg.telemetry", 0, np.arange(self.offset, self.offset + len(values)),
                       [None] * len(values), values)
        self.offset += len(values)
        decoded = decode_batch(raw, RT.types, RT.keys, RT.decode, now_ms=T0 + 3_600_000)
        assert decoded.errs == []
        out = self.engine.process(decoded.oks)
        self.out += out
        return out

    def finish(self) -> list[OutMsg]:
        self.out += self.engine.flush()
        return self.out

    def twin(self, device: str = DEV) -> TwinState:
        return self.engine.twin_state(self.engine.store.index[device], T0)


def docs(out: list[OutMsg], role: str) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in out if m.role == role]


def warm(sh: Shard, seconds: int = 45) -> int:
    """A thermostat at 1 Hz long enough to learn its profile; returns the next seq."""
    sh.feed([message(k, k) for k in range(seconds)])
    return seconds


def test_forged_and_unsigned_traffic_under_unknown_ids_creates_no_twin_and_is_dead_lettered() -> None:
    sh = Shard()
    values = [message(k, k, sign="none", device=f"thermostat-{k:06d}", src_ip="203.0.113.9")
              for k in range(300)] + [message(1, 1, sign="bad", device="thermostat-x")]
    out = sh.feed(values)
    assert sh.engine.store.size == 0 and not sh.engine.store.src_ips
    dead = docs(out, "deadletter")
    assert len(dead) == len(values) and docs(out, "threats") == [] == docs(out, "actions")
    assert [d["offset"] for d in dead] == list(range(len(values)))
    assert dead[0]["stage"] == "twin" and dead[0]["topic"] == RT.cfg.topics.telemetry
    assert "no signature for device 'thermostat-000000', which has no twin" in dead[0]["reason"]
    assert "a bad signature for device 'thermostat-x'" in dead[-1]["reason"]
    assert base64.b64decode(dead[0]["value_b64"]) == values[0]  # the original bytes


def test_a_twin_starts_with_the_first_signed_message_and_then_counts_forgeries_as_tampering() -> None:
    sh = Shard()
    out = sh.feed([message(0, 0, sign="none"), message(1, 1), message(2, 2, sign="none"),
                   message(3, 3, sign="bad")])
    assert len(docs(out, "deadletter")) == 1  # only the unsigned message before the twin existed
    assert sh.twin().version == 3  # signed + the two forgeries after it, as evidence
    threats = docs(sh.finish(), "threats")
    assert {t["threat"] for t in threats} == {"tampering"}


def test_unauthenticated_messages_do_not_rewrite_identity_or_raise_risk() -> None:
    clean, attacked = Shard(), Shard()
    for sh in (clean, attacked):
        warm(sh)
    forged = [message(45 + k, 45 + k, sign=("none", "bad")[k % 2], fw="9.9.9-evil",
                      src_ip="198.51.100.66", auth={"failures": 50, "successes": 3,
                                                    "principal": "root"}, dst_port=1000 + k)
              for k in range(20)]
    attacked.feed(forged)
    clean.feed([message(45 + k, 45 + k) for k in range(20)])
    twin = attacked.twin()
    assert (twin.fw, twin.src_ip) == ("4.2.0", HOME)
    threats = {t["threat"] for t in docs(attacked.finish(), "threats")}
    assert threats == {"tampering"}  # not firmware_tampering, brute_force, scan or unauthorized_access
    # the forgeries count once, as the tampering threat: no logins, ports or firmware of theirs
    assert clean.twin().risk_reasons == ["firmware 4.2.0 outdated (newest 4.3.0)"]
    assert attacked.twin().risk_reasons == ["1 threat detected, last tampering",
                                            "firmware 4.2.0 outdated (newest 4.3.0)"]


def test_signed_changes_of_firmware_and_address_are_believed() -> None:
    sh = Shard()
    seq = warm(sh)
    sh.feed([message(seq, seq, fw="4.3.0", src_ip="10.16.0.99")])
    assert (sh.twin().fw, sh.twin().src_ip) == ("4.3.0", "10.16.0.99")


def test_a_signed_message_claiming_another_type_is_dead_lettered() -> None:
    sh = Shard()
    sh.feed([message(0, 0)])
    out = sh.feed([message(1, 1, dtype="smart_meter"), message(2, 2)])
    dead = docs(out, "deadletter")
    assert len(dead) == 1 and dead[0]["offset"] == 1
    assert dead[0]["reason"] == ("device 'thermostat-000001' is a thermostat (its twin's type since "
                                 "its first authentic message); this signed message claims type "
                                 "'smart_meter': rejected")
    assert sh.twin().device_type == "thermostat" and sh.twin().version == 2


def brute_force(sh: Shard, seq: int, src: str) -> list[dict[str, Any]]:
    sh.feed([message(seq + k * 0.2, seq + k, src_ip=src, auth={"failures": 5}) for k in range(5)])
    return [a for a in docs(sh.finish(), "actions") if a["action"] == "block_ip"]


def test_a_block_never_aims_at_the_fleet_server_a_signed_device_claims_as_its_source() -> None:
    sh = Shard()
    blocks = brute_force(sh, warm(sh), BROKER)
    assert len(blocks) == 1
    assert blocks[0]["target"] == DEV and blocks[0]["tier"] == "approval"
    assert NO_PEER in blocks[0]["reason"]


def test_a_block_aims_at_the_foreign_source_seen_in_the_threats_window() -> None:
    sh = Shard()
    blocks = brute_force(sh, warm(sh), "203.0.113.50")
    assert [(b["target"], b["tier"]) for b in blocks] == [("203.0.113.50", "auto")]
    protected = Shard(ResponseConfig(protected_networks="10.0.0.0/8, 203.0.113.0/24"))
    blocks = brute_force(protected, warm(protected), "203.0.113.50")
    assert [(b["target"], b["tier"]) for b in blocks] == [(DEV, "approval")]


def test_exfiltration_blocks_the_new_destination_not_the_device() -> None:
    sh = Shard()
    seq = warm(sh)
    sh.feed([message(seq + k * 0.5, seq + k, dst_ip="198.51.100.7", dst_port=443,
                     bytes_out=2_000_000) for k in range(4)])
    threats = docs(sh.finish(), "threats")
    assert "exfiltration" in {t["threat"] for t in threats}
    blocks = [a for a in docs(sh.out, "actions") if a["action"] == "block_ip"]
    assert blocks and {(b["target"], b["tier"]) for b in blocks} == {("198.51.100.7", "auto")}


def test_response_actions_wait_for_approval_without_a_peer() -> None:
    with_peer = response_actions("exfiltration", "t1", DEV, 1, True, {"destination": "198.51.100.7"})
    without = response_actions("exfiltration", "t1", DEV, 1, True, {"source": "198.51.100.7"})
    assert [(a.action, a.target, a.tier) for a in with_peer] == [
        ("block_ip", "198.51.100.7", "auto"), ("quarantine", DEV, "approval")]
    assert (without[0].target, without[0].tier) == (DEV, "approval")
    assert [a.id for a in with_peer] == [a.id for a in without]  # ids do not depend on the target
    insider = response_actions("insider", "t2", DEV, 1, True, user="op.x")
    assert insider[0].target == "op.x"


def test_protected_networks_are_checked_when_the_config_loads() -> None:
    with pytest.raises(ValueError, match=r"response.protected_networks: '10.0.0.0/33'"):
        ResponseConfig(protected_networks="10.0.0.1, 10.0.0.0/33")


def test_targets_do_not_depend_on_how_the_input_was_batched() -> None:
    """A backlog read in one batch: each address is judged as its event arrived."""
    attack = [message(45 + k * 0.2, 45 + k, src_ip=BROKER, auth={"failures": 5}) for k in range(5)]
    attack += [message(47 + k * 0.5, 50 + k, dst_ip="198.51.100.7", dst_port=443,
                       bytes_out=2_000_000) for k in range(4)]
    targets = []
    for batches in ([[message(k, k) for k in range(45)] + attack],
                    [[message(k, k) for k in range(45)], attack[:3], attack[3:]]):
        sh = Shard()
        for b in batches:
            sh.feed(b)
        targets.append(sorted((a["target"], a["tier"]) for a in docs(sh.finish(), "actions")
                              if a["action"] == "block_ip"))
    assert targets[0] == targets[1]
    assert ("198.51.100.7", "auto") in targets[0] and (BROKER, "auto") not in targets[0]
