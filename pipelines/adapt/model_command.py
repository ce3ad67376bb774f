"""`twinguard model promote|rollback|list`: the model registry (compacted twinguard.models).

Key NAME holds the version every running dataflow of that name scores with (they hot-swap to it);
key NAME@VERSION keeps each promoted version, so `rollback` and `list` still find them after the
topic is compacted. A directory is verified here before it is promoted, and again by every process
before it swaps (operators/registry/verify.py): the files may change between the two.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from twinguard.operators.detect.scoring import Scorer
from twinguard.operators.io.kafka import produce_all, producer, read_topic
from twinguard.operators.registry.verify import directory_files
from twinguard.pipelines.adapt.lookup import login_name
from twinguard.pipelines.config import Config
from twinguard.schemas.features import FEATURE_SCHEMA
from twinguard.schemas.messages import ModelRecord

HELP = ("the model registry: promote a model directory (or a promoted version) so every running "
        "`twinguard run` hot-swaps to it, roll back to an earlier version, list the versions")
_decode = msgspec.json.Decoder(ModelRecord)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("promote", "rollback", "list"))
    p.add_argument("target", nargs="?", metavar="DIR|VERSION",
                   help="promote: a model directory (`twinguard train --out DIR`) or a version "
                   "promoted before; rollback: a version promoted before")
    p.add_argument("--name", default=None, help="registry name (default [models] name)")
    p.add_argument("--note", default="", help="why (kept in the record)")
    p.add_argument("--json", action="store_true", help="list: JSON lines instead of a table")
    p.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")


def run(args: argparse.Namespace, cfg: Config) -> int:
    name = args.name or cfg.models.name
    if args.action == "list":
        return _list(cfg, name, args.json)
    if not args.target:
        raise ValueError(f"twinguard model {args.action} needs a DIR or VERSION")
    if args.action == "promote" and Path(args.target).is_dir():
        rec = record_for(Path(args.target), name, args.note)
    else:
        rec = _earlier(cfg, name, args.target, rollback=args.action == "rollback")
        rec = msgspec.structs.replace(rec, promoted_at=int(time.time() * 1000),
                                      promoted_by=login_name(), note=args.note or args.action)
    publish(cfg, rec)
    print(f"model {name}: {rec.version} promoted ({rec.location}); running dataflows swap to it "
          "between batches")
    return 0


def record_for(d: Path, name: str, note: str = "") -> ModelRecord:
    """A registry record for a model directory, verified now (Scorer.load refuses a bad one)."""
    d = d.resolve()
    scorer = Scorer.load(d)
    meta = scorer.metadata or {}
    source = meta.get("metrics") or meta.get("holdout") or {}
    metrics = {k: float(v) for k, v in dict(source).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    return ModelRecord(name=name, version=scorer.version, location=str(d),
                       files=directory_files(d), promoted_at=int(time.time() * 1000),
                       promoted_by=login_name(), feature_schema=FEATURE_SCHEMA, metrics=metrics,
                       note=note)


def publish(cfg: Config, rec: ModelRecord) -> None:
    """The version's history record, then the name's current record (what the dataflows follow)."""
    value = msgspec.json.encode(rec)
    p = producer(cfg.kafka.client_settings())
    errors: list[str] = []
    produce_all(p, cfg.topics.models, [(f"{rec.name}@{rec.version}".encode(), value),
                                       (rec.name.encode(), value)], errors.append)
    if p.flush(30) != 0 or errors:
        raise RuntimeError(f"model record not written to {cfg.topics.models}: "
                           f"{errors[0] if errors else 'broker did not confirm within 30 s'}")


def registry(cfg: Config, name: str) -> tuple[ModelRecord | None, dict[str, ModelRecord]]:
    """The current record of `name` and every promoted version (latest record per key)."""
    current, versions = None, {}
    for key, value in read_topic(cfg.kafka.client_settings(), cfg.topics.models):
        if not value or key is None:
            continue
        try:
            rec = _decode.decode(value)
        except msgspec.DecodeError:
            continue  # the dataflows dead-letter it; the listing skips it
        if key == name.encode():
            current = rec
        elif key.startswith(f"{name}@".encode()):
            versions[rec.version] = rec
    return current, versions


def _earlier(cfg: Config, name: str, version: str, *, rollback: bool) -> ModelRecord:
    current, versions = registry(cfg, name)
    if version not in versions:
        known = ", ".join(sorted(versions)) or "none"
        raise ValueError(f"model {name}: version {version!r} was never promoted (known: {known}); "
                         "promote a directory with `twinguard model promote DIR`")
    if rollback and current is not None and current.version == version:
        raise ValueError(f"model {name}: {version} is already the current version")
    return versions[version]


def _list(cfg: Config, name: str, as_json: bool) -> int:
    current, versions = registry(cfg, name)
    if current is not None and current.version not in versions:  # written by hand, not promoted
        versions[current.version] = current
    rows = sorted(versions.values(), key=lambda r: r.promoted_at)
    if as_json:
        for r in rows:
            print(msgspec.json.encode(r).decode())
        return 0
    print(f"{'':2}{'version':<24} {'promoted (UTC)':<19}  {'by':<12} {'metrics':<36} location")
    for r in rows:
        mark = "* " if current is not None and current.version == r.version else "  "
        when = datetime.fromtimestamp(r.promoted_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        metrics = " ".join(f"{k}={v:.3g}" for k, v in sorted(r.metrics.items())[:3])
        print(f"{mark}{r.version:<24} {when:<19}  {r.promoted_by[:12]:<12} {metrics:<36} "
              f"{r.location}")
    if not rows:
        print(f"(no versions of {name!r} promoted: `twinguard model promote DIR`)")
    return 0

