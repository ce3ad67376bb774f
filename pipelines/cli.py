"""`twinguard` command line: demo, run, simulate, train, replay, evaluate, risk, intel, chaos, fuzz,
kafka, topics, config, respond, actions."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinguard.pipelines.adapt import feedback_command, model_command
from twinguard.pipelines.archive import command as archive_command
from twinguard.pipelines.archive import retrain_command
from twinguard.pipelines.cluster import command as cluster_command
from twinguard.pipelines.cluster import identity as cluster_identity
from twinguard.pipelines.config import Config, ConfigError, load_config, masked
from twinguard.pipelines.consume import command as threats_command
from twinguard.pipelines.dashboard import command as dashboard_command
from twinguard.pipelines.fatal import describe
from twinguard.pipelines.forensics import command as forensics_command
from twinguard.pipelines.respond import actions_command
from twinguard.pipelines.respond import command as respond_command
from twinguard.pipelines.tables.read import add_table_arguments
from twinguard.pipelines.text import PrintableFormatter, printable_lines

Handler = Callable[[argparse.Namespace, Config], int]
DEMO_INTEL = Path(__file__).with_name("demo_intel.jsonl")
# the multivariate model's limit methods (operators/detect/spot.py METHODS; numba stays unloaded for --help)
LIMIT_METHODS = ("quantile", "spot", "dspot")


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if getattr(args, "brokers", None):
        cfg = cfg.replace(kafka={"brokers": args.brokers})
    if getattr(args, "intel", None) is not None:
        cfg = cfg.replace(intel={"file": args.intel})
    if getattr(args, "recovery_dir", None):
        cfg = cfg.replace(recovery={"dir": args.recovery_dir})
    if getattr(args, "snapshot_interval", None):
        cfg = cfg.replace(recovery={"snapshot_interval_s": args.snapshot_interval})
    if getattr(args, "insecure_dev_key", False):
        cfg = cfg.replace(integrity={"insecure_dev_key": True})
    if getattr(args, "emit_windows", False):
        cfg = cfg.replace(archive={"emit_windows": True})
    return cfg


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.demo import DemoConfig, run_demo

    run_demo(cfg, DemoConfig(args.devices, args.duration, args.seed, Path(args.out), args.workers))
    return dashboard_command.serve_demo(Path(args.out), port=args.port) if args.dashboard else 0


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.cluster.identity import resolve
    from twinguard.pipelines.run import run_kafka

    place = resolve(cfg.cluster, os.environ, processes=args.processes, process_id=args.process_id,
                    addresses=args.addresses, workers=args.workers)
    run_kafka(cfg, place, args.until_idle)
    return 0


def cmd_simulate(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.sim.simulate import produce_simulation

    produce_simulation(cfg, args.devices, args.duration, args.rate, args.seed, Path(args.labels),
                       args.realtime, activity=not args.no_activity)
    return 0


def cmd_replay(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.tables.model import load_table_model
    from twinguard.pipelines.tables.read import read_table, table_options
    from twinguard.pipelines.tables.replay import (
        ReplayOptions,
        output_format,
        replay_table,
        summary,
        write_predictions,
    )

    output_format(args.out)
    model = load_table_model(args.model) if args.model else None
    table = read_table(args.input, table_options(args))
    cfg = _with_limits(cfg, args, model.multivariate if model else None)
    res = replay_table(table, cfg, ReplayOptions(args.warmup_rows, args.window,
                                                 deltas=args.deltas, fa_rate=args.fa_rate),
                       scorer=model.scorer if model else None,
                       baselines=model.baselines if model else None)
    out = write_predictions(res, args.out)
    print(summary(res))
    print(f"predictions written to {out}")
    return 0


def cmd_train(args: argparse.Namespace, cfg: Config) -> int:
    if args.from_archive:
        return retrain_command.run(args, cfg)
    if args.inputs:
        return _train_tables(args, cfg)
    from twinguard.pipelines.sim.train import TrainConfig, train

    tc = TrainConfig(devices=args.devices, duration_s=args.duration,
                     seeds=tuple(args.seeds), rounds=args.rounds)
    out = Path(args.out or "model")
    meta = train(cfg, tc, out)
    print(f"model {meta['version']} written to {out} (serve it with [detection] model_dir); "
          "hold-out macro-F1 "
          f"{meta['holdout']['macro_f1']}")
    for c, m in meta["holdout"]["per_class"].items():
        print(f"  {c:<22} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} "
              f"n={m['support']}")
    return 0


def _with_limits(cfg: Config, args: argparse.Namespace, learned: dict[str, Any] | None = None
                 ) -> Config:
    """The config with `--limits` and `--time-context` for the multivariate model: as given, else
    as the model's `train` ran (a model learned with the time context needs it to replay)."""
    over: dict[str, object] = {}
    if learned and "limits" in learned:
        over["multivariate_limits"] = learned["limits"]
    if learned and "time_context" in learned:
        over["multivariate_time_context"] = bool(learned["time_context"])
    if args.limits is not None:
        over["multivariate_limits"] = args.limits
    if args.time_context is not None:
        over["multivariate_time_context"] = args.time_context == "auto"
    return cfg.replace(detection=over) if over else cfg


def _train_tables(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.tables.read import table_options
    from twinguard.pipelines.tables.train import train_tables

    if not args.out:
        print("twinguard train: error: training from tables needs --out MODEL_DIR (the shipped "
              "simulator model is not overwritten)", file=sys.stderr)
        return 2
    cfg = _with_limits(cfg, args)
    meta = train_tables(args.inputs, table_options(args), cfg, args.warmup_rows, Path(args.out),
                        args.rounds, args.deltas, args.fa_rate)
    print(f"model {meta['version']} written to {args.out}: {meta['summary']}")
    return 0


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    if args.scenarios:
        from twinguard.pipelines.evaluation.scenarios import run_scenarios

        return run_scenarios(cfg, args.seeds, args.devices, args.duration, args.out)
    if args.predictions:
        from twinguard.pipelines.evaluation.predictions import Slack, evaluate_file

        slack = Slack(rows=args.slack_rows or 0, seconds=args.slack_seconds or 0.0)
        return evaluate_file(args.predictions, args.out, slack, args.class_map)
    if not args.labels:
        raise ValueError("pass --predictions FILE (a replay's output), --labels FILE (simulator "
                         "labels, scored against the threats topic) or --scenarios")
    from twinguard.pipelines.evaluation.kafka import evaluate_topic

    return evaluate_topic(cfg, Path(args.labels), args.devices_from, args.out)


def cmd_risk(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.kafka.risk_report import as_json, format_table, rank, read_fleet, read_fleet_file

    fleet = read_fleet_file(Path(args.twins)) if args.twins else read_fleet(cfg)
    if args.type and all(t.device_type != args.type for t in fleet.twins.values()):
        types = sorted({t.device_type for t in fleet.twins.values()})
        raise ValueError(f"no twins of type {args.type!r} in {args.twins or cfg.topics.twins} "
                         f"(types present: {', '.join(types) or 'none'})")
    rows = rank(fleet.twins.values(), args.top, args.type)
    print(as_json(rows, fleet) if args.json else format_table(rows, len(fleet.twins)))
    if fleet.unreadable:
        print(f"{fleet.unreadable} twin records could not be read and were skipped", file=sys.stderr)
    return 0


def cmd_intel(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.kafka.intel_publish import feed_messages, indicator_key, send

    if args.action == "publish":
        items = [m for f in args.items for m in feed_messages(Path(f), cfg.intel.limits())]
    else:  # a tombstone (empty value) per indicator: compaction removes it, readers drop it
        items = [(indicator_key(i), b"") for i in args.items]
    done = "published to" if args.action == "publish" else "withdrawn from"
    print(f"{send(cfg, items)} intel entries {done} {cfg.topics.intel}")
    return 0


def cmd_chaos(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.chaos import ChaosConfig, format_table, run_chaos, write_report

    cc = ChaosConfig(kills=args.kills, outage_s=args.outage_seconds, events=args.events,
                     brokers=args.brokers, seed=args.seed, duration_s=args.duration,
                     partitions=args.partitions,
                     keep_dir=Path(args.keep_dir) if args.keep_dir else None)
    return _reported(run_chaos(cfg, cc), Path(args.out), write_report, format_table)


def cmd_fuzz(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.fuzz import FuzzConfig, format_table, run_fuzz, write_report

    fc = FuzzConfig(size=args.size, seed=args.seed, partitions=args.partitions,
                    max_restarts=args.restarts, mode=args.mode,
                    keep_dir=Path(args.keep_dir) if args.keep_dir else None)
    return _reported(run_fuzz(cfg, fc), Path(args.out), write_report, format_table)


def _reported(report: dict[str, Any], out: Path, write: Callable[[dict[str, Any], Path], Any],
              table: Callable[[dict[str, Any]], str]) -> int:
    """An experiment's report written to `out` and shown as a table; exit 0 only if it passed."""
    write(report, out)
    print(table(report))
    print(f"report written to {out}")
    return 0 if report["ok"] else 1


def cmd_kafka(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.kafka import local as kafka_local

    if args.action == "fetch":
        print(f"Kafka broker jars in {kafka_local.lib_dir()}")
    elif args.action == "up":
        info = kafka_local.up(args.port, Path(args.data_dir) if args.data_dir else None)
        print(f"Kafka is up: brokers={info.brokers} pid={info.pid} log={info.log_path}")
    elif args.action == "status":
        found = kafka_local.status()
        print(f"Kafka is up: brokers={found.brokers} pid={found.pid}" if found else "Kafka is down")
        return 0 if found else 1
    else:
        print("Kafka stopped" if kafka_local.down() else "no local Kafka was running")
    return 0


def cmd_topics(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.pipelines.kafka.admin import create_topics, topic_specs

    specs = topic_specs(cfg, args.partitions)
    made = create_topics(cfg.kafka.client_settings(), specs)
    for s in specs:
        print(f"{s.name:<28} partitions={s.partitions} {'created' if s.name in made else 'exists'}")
    return 0


def cmd_config(args: argparse.Namespace, cfg: Config) -> int:
    print(json.dumps(masked(cfg), indent=2))
    return 0


def cmd_bench(args: argparse.Namespace, cfg: Config) -> int:
    from twinguard.benchmarks.report import summary
    from twinguard.benchmarks.runner import SUITES, run_bench

    suites = list(SUITES) if args.suite == "all" else [args.suite]
    result = run_bench(args.config, suites, args.quick, Path(args.out), args.latency_rate)
    print(summary(result))
    print(f"results written to {args.out}/results.json, results.md, *.png, profile.txt")
    return 1 if result["errors"] else 0


def _rate(text: str) -> float:
    """A false-alarm rate: a share of windows, strictly between 0 and 0.5."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 0.5:
        msg = f"expected a share of windows between 0 and 0.5 (e.g. 0.004), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinguard", description=__doc__)
    p.add_argument("--config", help="TOML config file (defaults: pipelines/defaults.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Handler, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    d = add("demo", cmd_demo, "run the full dataflow on an embedded simulated fleet (no Kafka)")
    d.add_argument("--devices", type=int, default=600, help="fleet size (default 600)")
    d.add_argument("--duration", type=float, default=90.0, help="simulated seconds (default 90)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--workers", type=int, default=1, help="Bytewax workers (threads)")
    d.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--dashboard", action="store_true", help="then show the run on the dashboard "
                   "page (http://127.0.0.1:PORT/) until Ctrl-C")
    d.add_argument("--port", type=int, default=dashboard_command.DEFAULT_PORT,
                   help="--dashboard's port")
    d.add_argument("--intel", default=str(DEMO_INTEL), metavar="FILE",
                   help="threat intel, JSON lines of the Intel schema (default: a small demo feed; "
                        "'' for none)")

    threats_command.add_arguments(add("threats", threats_command.run, "print the threats topic as a "
                                      "table or JSON lines, de-duplicated by id (--follow: live)"))

    dashboard_command.add_arguments(add("dashboard", dashboard_command.run, "serve a live page: "
                                        "fleet, threat feed, risk, threats over time, lag"))

    forensics_command.add_arguments(add("forensics", forensics_command.run, "collect one threat's "
                                        "evidence (twin, features, raw messages, model, actions) "
                                        "into a directory"))

    r = add("run", cmd_run, "run the dataflow: telemetry + activity topics -> "
            "twins/threats/actions/deadletter")
    r.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    r.add_argument("--workers", type=int, default=None, help="Bytewax workers in this process "
                   "(default: BYTEWAX_WORKERS_PER_PROCESS, else [cluster] workers)")
    cluster_identity.add_arguments(r)
    r.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                   help="stop once every input partition is drained and got nothing for "
                   "this long (tests, benchmarks)")
    r.add_argument("--recovery-dir", help="Bytewax recovery store (created on first start)")
    r.add_argument("--snapshot-interval", type=float, help="seconds between state snapshots")
    r.add_argument("--intel", metavar="FILE", help="threat intel JSON lines loaded at start, in "
                   "addition to the intel topic (config intel.file)")
    r.add_argument("--insecure-dev-key", action="store_true",
                   help="with no HMAC keys configured, accept messages signed with the public "
                   "development key (demos and tests only: anyone can sign with it)")
    r.add_argument("--emit-windows", action="store_true", help="also write every closed window "
                   "(features, twin context, model verdict) to the windows topic for `twinguard "
                   "archive` (config archive.emit_windows)")

    s = add("simulate", cmd_simulate, "produce simulated fleet telemetry and operator activity "
            "with labelled attacks")
    s.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    s.add_argument("--devices", type=int, default=300)
    s.add_argument("--duration", type=float, default=60.0, help="simulated seconds")
    s.add_argument("--rate", type=float, default=None, help="fleet events/s (default: per type)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--labels", required=True, help="write attack labels (JSON lines) here")
    s.add_argument("--realtime", action="store_true", help="pace production to event time")
    s.add_argument("--no-activity", action="store_true",
                   help="telemetry only: no operators on the activity topic (no insider/drift)")

    t = add("train", cmd_train, "train the XGBoost attack classifier from simulated fleets, or, "
            "given tables, learn their baselines (and a classifier when they carry attack labels)")
    t.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="CSV/parquet tables to learn from (default: simulated fleets)")
    t.add_argument("--out", default=None, help="model directory (default for simulated fleets: "
                   "./model; required with tables)")
    t.add_argument("--devices", type=int, default=1500)
    t.add_argument("--duration", type=float, default=180.0)
    t.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    t.add_argument("--rounds", type=int, default=60, help="boosting rounds (--from-archive: "
                   "rounds added to the champion)")
    retrain_command.add_arguments(t)
    t.add_argument("--warmup-rows", type=int, default=None, metavar="N",
                   help="tables: first N rows per device only learn (default 100)")
    add_table_arguments(t)
    t.add_argument("--deltas", action="store_true", help="tables: also learn each signal's "
                   "row-to-row change (replay --model then uses them too)")
    t.add_argument("--fa-rate", type=_rate, default=None, metavar="P", help="tables: target "
                   "share of normal windows over the multivariate model's limits (default "
                   "0.004: 99.9 %% limits on each of its four statistics)")
    t.add_argument("--limits", choices=LIMIT_METHODS, default=None, help="tables: how the "
                   "multivariate model's limits meet --fa-rate without labels (default: "
                   "[detection] multivariate_limits, spot)")
    t.add_argument("--time-context", choices=("auto", "off"), default=None, help="tables: let "
                   "time of day / day of week join the multivariate model where the learning "
                   "period shows them (auto) or never (off, the default)")

    rp = add("replay", cmd_replay, "stream a CSV/parquet table through the detection engine: "
             "one score, flag and threat class per row")
    rp.add_argument("input", metavar="INPUT", help="CSV or parquet table")
    add_table_arguments(rp)
    rp.add_argument("--warmup-rows", type=int, default=None, metavar="N",
                    help="first N rows per device are the learning period, flag 0 (default 100; "
                    "0 for devices with baselines from --model)")
    rp.add_argument("--window", type=float, default=None, metavar="SECONDS",
                    help="window length (default: the median interval between a device's rows)")
    rp.add_argument("--model", default=None, metavar="DIR",
                    help="model directory from `twinguard train TABLE...` (learned baselines "
                    "and/or classifier); default: learned online from the table only")
    rp.add_argument("--deltas", action="store_true",
                    help="also judge each signal's change since the device's previous row (finds "
                    "spikes on smooth cycles; more alarms on signals that switch)")
    rp.add_argument("--fa-rate", type=_rate, default=None, metavar="P",
                    help="target share of normal windows over the multivariate model's limits, "
                    "for devices that learn here (default 0.004; a --model keeps its limits)")
    rp.add_argument("--limits", choices=LIMIT_METHODS, default=None,
                    help="how the multivariate model's limits meet the rate: quantile, spot (peaks "
                    "over threshold; default), dspot (spot, refined by windows judged normal)")
    rp.add_argument("--time-context", choices=("auto", "off"), default=None,
                    help="time of day / day of week in the multivariate model where the learning "
                    "period shows them (auto) or never (off, default); with --model: as its train ran")
    rp.add_argument("--out", required=True, help="predictions file (.csv or .parquet)")

    e = add("evaluate", cmd_evaluate, "score detections against labels: a replay's predictions "
            "file (--predictions), the threats topic (--labels) or simulated scenarios (--scenarios)")
    e.add_argument("--out", default=None, help="also write the result as JSON here")
    ep = e.add_argument_group("predictions file", "score `twinguard replay` output (rows, events, "
                              "time to detect, false alarms per device-day; never point-adjusted)")
    ep.add_argument("--predictions", default=None, metavar="FILE",
                    help="replay output (csv/parquet) with a label column")
    slack = ep.add_mutually_exclusive_group()
    slack.add_argument("--slack-rows", type=int, default=None, metavar="N",
                       help="a flag up to N rows after an attack still detects it (default 0)")
    slack.add_argument("--slack-seconds", type=float, default=None, metavar="S",
                       help="a flag up to S seconds after an attack still detects it (default 0)")
    ep.add_argument("--class-map", default=None, metavar="A=B,...",
                    help="rename dataset label classes to threat classes, e.g. ddos=dos")
    ek = e.add_argument_group("threats topic", "score the Kafka threats topic against simulator "
                              "labels")
    ek.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    ek.add_argument("--labels", default=None, help="labels file written by `simulate`")
    ek.add_argument("--devices-from", choices=["twins", "labels"], default="twins",
                    help="where the fleet's device list comes from (default: the twins topic)")
    es = e.add_argument_group("simulated scenarios", "no Kafka: the issue #4 numbers on fresh seeds")
    es.add_argument("--scenarios", action="store_true",
                    help="no Kafka: simulated attack fleets on fresh seeds plus an attack-free fleet "
                         "through the offline flow -> macro-F1, %% detected within 2 s, false alarms "
                         "per 1,000 device-hours (pipelines/evaluation/scenarios.py)")
    es.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13],
                    help="--scenarios: attack-fleet seeds (default 11 12 13; training uses 101-103, 999)")
    es.add_argument("--devices", type=int, default=1000, help="--scenarios: devices per attack fleet")
    es.add_argument("--duration", type=float, default=120.0,
                    help="--scenarios: simulated seconds per attack fleet")

    rk = add("risk", cmd_risk, "the fleet ranked by risk score with the top reasons, from the twins "
             "topic: the patch-priority list")
    rk.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    rk.add_argument("--top", type=int, default=20, help="devices to show (default 20; 0 = all)")
    rk.add_argument("--type", default=None, help="only devices of this type")
    rk.add_argument("--json", action="store_true", help="machine-readable output")
    rk.add_argument("--twins", metavar="FILE", help="read twins from a JSON-lines file instead "
                    "(e.g. out/demo/twins.jsonl)")

    it = add("intel", cmd_intel, "publish threat intel (JSON lines of the Intel schema) to the "
             "compacted intel topic, or withdraw indicators")
    it.add_argument("action", choices=["publish", "withdraw"])
    it.add_argument("items", nargs="+", metavar="FILE|INDICATOR",
                    help="publish: JSON-lines files; withdraw: indicators (e.g. 203.0.113.0/24)")
    it.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")

    c = add("chaos", cmd_chaos, "reliability report: SIGKILL the dataflow, stop the broker, "
            "account for every message")
    c.add_argument("--kills", type=int, default=10, help="SIGKILL/restart cycles (default 10)")
    c.add_argument("--outage-seconds", type=float, default=30.0,
                   help="broker downtime during a later run (default 30; private broker only)")
    c.add_argument("--events", type=int, default=300_000, help="telemetry messages (default 300000)")
    c.add_argument("--brokers", help="use this Kafka (no outage) instead of a private broker")
    c.add_argument("--seed", type=int, default=7, help="fleet and kill timing seed")
    c.add_argument("--partitions", type=int, default=2, help="partitions of the chaos topics")
    c.add_argument("--duration", type=float, default=None,
                   help="seconds of live telemetry (default: long enough for the schedule)")
    c.add_argument("--keep-dir", default=None, help="keep run logs here (default: temp, kept on "
                   "failure)")
    c.add_argument("--out", required=True, help="write the JSON report here")

    fz = add("fuzz", cmd_fuzz, "hostile-input report: every attack of issue 18 plus random "
             "mutations against `twinguard run`; crashes, lost and dead-lettered messages per kind")
    fz.add_argument("--brokers", help="Kafka bootstrap servers (default from config); the suite "
                    "creates and deletes its own topics")
    fz.add_argument("--size", type=int, default=2000,
                    help="random mutations, and unsigned random device ids, each (default 2000; "
                    "the README's figures: 200000)")
    fz.add_argument("--seed", type=int, default=7)
    fz.add_argument("--partitions", type=int, default=2, help="partitions of the fuzz topics")
    fz.add_argument("--restarts", type=int, default=2,
                    help="restarts of a crashed run (it resumes from its snapshot; default 2)")
    fz.add_argument("--mode", choices=["auto", "mixed", "isolated"], default="auto",
                    help="mixed: all kinds in one run; isolated: one run per kind; auto (default): "
                    "mixed, and isolated only if that failed (to say which kinds fail)")
    fz.add_argument("--keep-dir", default=None, help="keep run logs here (default: temp, kept on "
                    "failure)")
    fz.add_argument("--out", required=True, help="write the JSON report here")

    k = add("kafka", cmd_kafka, "run a real single-node Apache Kafka on 127.0.0.1")
    k.add_argument("action", choices=["fetch", "up", "status", "down"],
                   help="fetch: only download the broker jars (Maven, once, into ~/.cache/twinguard)")
    k.add_argument("--port", type=int, default=9092)
    k.add_argument("--data-dir", default=None, help="broker data (default ~/.local/state/twinguard/kafka)")

    tp = add("topics", cmd_topics, "create every configured topic")
    tp.add_argument("action", choices=["create"])
    tp.add_argument("--brokers", help="Kafka bootstrap servers (default from config)")
    tp.add_argument("--partitions", type=int, default=None, help="default from config")

    cluster_command.add_arguments(add("cluster", cluster_command.run, "run the dataflow as N "
                                      "supervised processes on this machine (pods of a cluster)"))

    add("config", cmd_config, "print the resolved configuration (secrets masked)")

    respond_command.add_arguments(add("respond", respond_command.run, respond_command.HELP))
    feedback_command.add_arguments(add("feedback", feedback_command.run, feedback_command.HELP))
    model_command.add_arguments(add("model", model_command.run, model_command.HELP))
    actions_command.add_arguments(add("actions", actions_command.run, actions_command.HELP))
    archive_command.add_arguments(add("archive", archive_command.run, archive_command.HELP))

    b = add("bench", cmd_bench, "benchmarks: operators, end to end on a private Kafka broker, "
            "peers (naive and expert Bytewax, Quix Streams, a micro-batch consumer), scaling, memory, "
            "sustained (the highest live rate held within 1 s), respond (attack -> action executed, "
            "actions/s through the guard)")
    b.add_argument("--suite", choices=["operators", "e2e", "peers", "scaling", "memory", "sustained",
                                       "respond", "all"],
                   default="all", help="which suite (default all)")
    b.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    b.add_argument("--out", required=True, help="results folder (results.json, results.md, plots)")
    b.add_argument("--latency-rate", type=float, default=None, metavar="EV/S",
                   help="pace the latency run at this rate instead of half the measured maximum "
                   "(to compare two builds at the same load)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()  # log arguments may carry device strings: escaped
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    try:
        fn: Handler = args.fn
        return fn(args, _config(args))
    except (ConfigError, ValueError, RuntimeError, FileNotFoundError) as e:
        # Bytewax wraps what a step raised: the chain's root is the message that says what to fix
        print(printable_lines(describe(e, f"twinguard {args.command}")), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
