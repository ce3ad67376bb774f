"""Adaptation benchmark (issue 15, 6b): a new attack variant the shipped model mistypes; its per-class
F1 before, and after analyst feedback on its threats and `train --from-archive`.

`python -m twinguard.benchmarks.adaptation --out DIR [--quick]` writes DIR/adaptation.json and
DIR/adaptation.md. No broker: the simulated fleets run through the dataflow's own steps
(pipelines/offline.py) with `[archive] emit_windows` on, and the archive is written by the archive's
own store from the very `windows`/`threats` messages the dataflow would produce; the Kafka leg
(topic -> `twinguard archive`) is covered by tests/integration/pipelines/archive.

1. "past" fleet: the default attack mix plus the variant `exfil_flood` (sim/variants.py: exfiltration
   hidden in a flood), scored by the shipped model, every window archived.
2. Feedback, as an analyst would give it: every threat overlapping a labelled attack of its device
   is a `true_positive` naming the attack's real class; every other threat a `false_positive`.
3. `retrain`: champion = the shipped model, challenger = boosted further on the archive, compared on
   the archive's latest 20 % of time; written only if better.
4. Fresh fleets (other seeds): the variant alone and the default mix, judged by the engine (detectors
   + model + policy) with the shipped model and with the challenger: per-class F1 over windows
   (windows only grazing an attack left out, as in `train`); medians over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from twinguard.operators.detect.scoring import Scorer
from twinguard.pipelines.archive.records import to_row
from twinguard.pipelines.archive.retrain import retrain
from twinguard.pipelines.archive.store import ArchiveStore
from twinguard.pipelines.config import Config, load_config
from twinguard.pipelines.flow import Runtime
from twinguard.pipelines.offline import OfflineRun, run_fleet
from twinguard.pipelines.sim.fleet import ATTACK_CLASSES, SimConfig
from twinguard.pipelines.sim.labels import AttackLabel
from twinguard.pipelines.sim.train import per_class_metrics, window_labels
from twinguard.schemas.messages import Feedback, ThreatEvent

VARIANT, VARIANT_CLASS = "exfil_flood", "exfiltration"
START_MS = 1_760_000_000_000
_threat = msgspec.json.Decoder(ThreatEvent)


def fleet(seed: int, devices: int, duration_s: float, attacks: tuple[str, ...]) -> SimConfig:
    return SimConfig(devices=devices, duration_s=duration_s, seed=seed, attack_fraction=0.35,
                     attacks=attacks, start_ms=START_MS + seed * 10**7)


def feedback_for(run: OfflineRun, labels: list[AttackLabel]) -> list[bytes]:
    """An analyst's verdict on every threat: true positive with the attack's real class when a
    labelled attack of its device overlaps its window, else false positive."""
    by_device: dict[str, list[AttackLabel]] = defaultdict(list)
    for lab in labels:
        by_device[lab.device_id].append(lab)
    out = []
    for o in run.outputs:
        if o.role != "threats":
            continue
        t = _threat.decode(o.value)
        hit = [lab for lab in by_device[t.device_id]
               if lab.start <= t.window_end and lab.end >= t.window_start]
        fb = Feedback(threat_id=t.id, verdict="true_positive" if hit else "false_positive",
                      analyst="bench", ts=t.window_end + 60_000,
                      threat=hit[0].threat if hit else None)
        out.append(msgspec.json.encode(fb))
    return out


def archive_run(root: Path, run: OfflineRun, feedback: list[bytes]) -> dict[str, int]:
    """The run's windows and threats plus the feedback into an archive, as `twinguard archive`
    stores them."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    values = [(o.role, o.value) for o in run.outputs if o.role in ("windows", "threats")]
    values += [("feedback", v) for v in feedback]
    for i, (kind, value) in enumerate(values):
        date, row = to_row(kind, value)
        groups[(kind, date)].append({**row, "_partition": 0, "_offset": i})
    ArchiveStore(root).append(dict(groups), {})
    return {k: sum(1 for kind, _ in values if kind == k) for k in ("windows", "threats", "feedback")}


def judged(cfg: Config, sim: SimConfig, scorer: Scorer) -> dict[str, Any]:
    """Per-class F1 of the engine's decisions over a fleet's windows (ambiguous ones left out)."""
    run, fl = run_fleet(Runtime.from_config(cfg, scorer=scorer), sim, f"judge seed {sim.seed}")
    y = window_labels(run.windows, fl.labels)
    keep = y >= 0
    return per_class_metrics(y[keep], np.array(run.windows.decided)[keep])


def measure(devices: int, duration_s: float, seeds: list[int], rounds: int, work: Path
            ) -> dict[str, Any]:
    cfg = load_config().replace(archive={"emit_windows": True})
    shipped = Scorer.load()
    mix = (*ATTACK_CLASSES, VARIANT, VARIANT, VARIANT)  # the variant 3x as often as a class
    t0, c0 = time.perf_counter(), time.process_time()
    past, fl = run_fleet(Runtime.from_config(cfg, scorer=shipped),
                         fleet(1, devices, duration_s, mix), "past fleet")
    counts = archive_run(work / "archive", past, feedback_for(past, fl.labels))
    verdict = retrain(cfg, work / "archive", None, work / "model", rounds)
    learn_s, learn_cpu = time.perf_counter() - t0, time.process_time() - c0
    after = Scorer.load(work / "model") if verdict.promoted else shipped
    evals: dict[str, list[dict[str, Any]]] = {"variant_before": [], "variant_after": [],
                                              "mix_before": [], "mix_after": []}
    for seed in seeds:
        for name, attacks in (("variant", (VARIANT,)), ("mix", ATTACK_CLASSES)):
            sim = fleet(seed, devices, duration_s, attacks)
            evals[f"{name}_before"].append(judged(cfg, sim, shipped))
            evals[f"{name}_after"].append(judged(cfg, sim, after))
    return {"archive": counts, "promoted": verdict.promoted, "reason": verdict.reason,
            "comparison_table": verdict.table, "champion": shipped.version,
            "challenger": after.version if verdict.promoted else None,
            "variant_f1": {k: _median_f1(evals[k], VARIANT_CLASS) for k in evals if "variant" in k},
            "mix_per_class_f1": {k: _per_class_medians(evals[k]) for k in evals if "mix" in k},
            "mix_macro_f1": {k: statistics.median(e["macro_f1"] for e in evals[k])
                             for k in evals if "mix" in k},
            "evaluations": evals, "learn_wall_s": round(learn_s, 1),
            "learn_cpu_s": round(learn_cpu, 1)}


def _median_f1(results: list[dict[str, Any]], cls: str) -> float:
    return float(statistics.median(r["per_class"][cls]["f1"] for r in results))


def _per_class_medians(results: list[dict[str, Any]]) -> dict[str, float]:
    classes = [c for c, m in results[0]["per_class"].items() if m["support"] > 0]
    return {c: _median_f1(results, c) for c in classes}


def report_md(r: dict[str, Any]) -> str:
    m = r["mix_per_class_f1"]
    lines = [f"# Adaptation (6b): {VARIANT} before and after feedback + retraining", "",
             f"- {r['setup']}", f"- load average before/after: {r['load_before']} / {r['load_after']}",
             f"- archive: {r['archive']}; promoted: {r['promoted']} ({r['reason']})",
             f"- learning (past fleet + archive + retrain): {r['learn_wall_s']} s wall, "
             f"{r['learn_cpu_s']} s CPU", "",
             f"| fleet (median over seeds {r['seeds']}) | F1 before | F1 after |", "|---|---|---|",
             f"| variant only: {VARIANT_CLASS} F1 | {r['variant_f1']['variant_before']:.3f} | "
             f"{r['variant_f1']['variant_after']:.3f} |",
             f"| default mix: macro-F1 | {r['mix_macro_f1']['mix_before']:.3f} | "
             f"{r['mix_macro_f1']['mix_after']:.3f} |"]
    lines += [f"| default mix: {c} | {m['mix_before'][c]:.3f} | {m['mix_after'].get(c, 0.0):.3f} |"
              for c in m["mix_before"]]
    return "\n".join([*lines, "", "Hold-out comparison inside the archive (time split):", "",
                      "```", r["comparison_table"], "```", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (adaptation.json, adaptation.md)")
    p.add_argument("--quick", action="store_true", help="small fleets (a minute; for tests)")
    p.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23],
                   help="evaluation fleets' seeds (the past fleet is seed 1)")
    args = p.parse_args(argv)
    devices, duration, rounds = (120, 120.0, 10) if args.quick else (600, 300.0, 30)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(devices, duration, args.seeds, rounds, Path(tmp))
    r.update(setup=f"{devices} devices x {duration:.0f} s per fleet, {rounds} rounds added",
             seeds=args.seeds, load_before=[round(x, 2) for x in load_before],
             load_after=[round(x, 2) for x in os.getloadavg()])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adaptation.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "adaptation.md").write_text(report_md(r))
    print(report_md(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
