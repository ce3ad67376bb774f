"""Results: targets verdicts, results.json, results.md (tables) and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TARGETS: list[tuple[str, str, str, float, str]] = [
    # key, description, comparison, threshold, unit
    ("sustained_events_per_s", "live rate sustained with pipeline delay p99 <= 1 s", ">=", 100_000,
     "ev/s"),
    ("sustained_latency_p99_ms", "detection latency p99 at that rate", "<=", 1000, "ms"),
    ("sustained_2p_events_per_s", "the same with 2 dataflow processes", ">=", 100_000, "ev/s"),
    ("operators_events_per_s_per_core", "operators: events/s per core", ">=", 1_000_000, "ev/s"),
    ("operators_events_per_cpu_s_10k", "operators at 10k devices: events per CPU-second", ">=",
     400_000, "ev/s"),
    ("e2e_events_per_s", "end to end through Kafka: events/s", ">=", 400_000, "ev/s"),
    ("vs_bytewax_naive", "ours e2e / Bytewax-naive peer", ">=", 20, "x"),
    ("vs_quix", "ours e2e / Quix Streams peer", ">=", 10, "x"),
    ("vs_strongest_peer", "ours e2e / strongest peer (expert ones included)", ">=", 2, "x"),
    ("e2e_latency_p99_ms", "detection latency p99", "<=", 1000, "ms"),
    ("state_bytes_per_device", "twin state per device", "<=", 2048, "B"),
    ("speedup_2_processes", "2 Bytewax processes vs 1", ">=", 1.7, "x"),
]


def _get(d: dict[str, Any], *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def measured(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "sustained_events_per_s": _get(r, "sustained", "events_per_s"),
        "sustained_latency_p99_ms": _get(r, "sustained", "latency_ms", "p99"),
        "sustained_2p_events_per_s": _get(r, "sustained", "by_processes", "2", "events_per_s"),
        "operators_events_per_s_per_core": _get(r, "operators", "events_per_s_per_core"),
        "operators_events_per_cpu_s_10k": _get(r, "operators", "events_per_cpu_s_by_devices", "10000"),
        "e2e_events_per_s": _get(r, "e2e", "events_per_s"),
        "vs_bytewax_naive": _get(r, "peers", "bytewax_naive", "ratio_ours_over_peer"),
        "vs_quix": _get(r, "peers", "quix", "ratio_ours_over_peer"),
        "vs_strongest_peer": _get(r, "peers", "ratio_ours_over_strongest"),
        "e2e_latency_p99_ms": _get(r, "e2e", "latency_ms", "p99"),
        "state_bytes_per_device": _get(r, "memory", "bytes_per_device"),
        "speedup_2_processes": _get(r, "scaling", "speedup_2_processes"),
    }


def targets(r: dict[str, Any]) -> dict[str, Any]:
    vals = measured(r)
    out: dict[str, Any] = {}
    for key, desc, cmp, thr, unit in TARGETS:
        v = vals[key]
        met = None if v is None else (v >= thr if cmp == ">=" else v <= thr)
        out[key] = {"description": desc, "target": f"{cmp} {thr:,} {unit}",
                    "value": v, "met": met,
                    "fraction_of_target": None if v in (None, 0) else
                    round(v / thr if cmp == ">=" else thr / v, 4)}
    return out


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "not measured"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (int, float)):
        s = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
        return f"{s} {unit}".strip()
    return str(v)


def _latency_stages(lm: dict[str, Any]) -> list[str]:
    """Where detection latency goes: per stage, and per class (first right-class threat)."""
    st = lm.get("attack_stages_ms")
    if not isinstance(st, dict):
        return []

    def ps(d: dict[str, Any]) -> str:
        return f"{_fmt(d['p50'])} / {_fmt(d['p95'])} / {_fmt(d['p99'])}"

    te, ts = lm["threat_engine_ms"], lm["threat_sink_ms"]
    L = ["", "Latency by stage (ms, p50 / p95 / p99): evidence = window end - attack start "
         "(event time), engine = `detected_at` - window end, sink = broker append - "
         "`detected_at`.", "",
         "| | evidence | engine | sink |", "|---|---:|---:|---:|",
         f"| first right-class threat per attack | {ps(st['evidence_ms'])} | "
         f"{ps(st['engine_ms'])} | {ps(st['sink_ms'])} |",
         f"| every threat, early rows (n {te['early_rows']['n']}) | | "
         f"{ps(te['early_rows'])} | {ps(ts['early_rows'])} |",
         f"| every threat, closed windows (n {te['closed_windows']['n']}) | | "
         f"{ps(te['closed_windows'])} | {ps(ts['closed_windows'])} |", "",
         f"{lm['attacks_by_closed_window']} of {lm['right_class']['n']} attacks were first "
         "detected by a closed window (the rest by an early row).", "",
         "| class | attacks | latency p50 / p95 / p99 | closed window | evidence p50 | engine p50 "
         "| sink p50 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c, v in lm["per_class"].items():
        L.append(f"| {c} | {v['latency_ms']['n']} | {ps(v['latency_ms'])} | {v['closed_window']} "
                 f"| {_fmt(v['evidence_ms_p50'])} | {_fmt(v['engine_ms_p50'])} "
                 f"| {_fmt(v['sink_ms_p50'])} |")
    return L


def markdown(r: dict[str, Any]) -> str:
    L: list[str] = ["# twinguard benchmark results", ""]
    m = r.get("machine", {})
    L.append(f"{'quick' if r['meta']['quick'] else 'full'} run, suites "
             f"{', '.join(r['meta']['suites'])}; {m.get('cpu_model')} ({m.get('usable_cores')} "
             f"usable cores), {m.get('ram_gb')} GB RAM; load average at start "
             f"{m.get('loadavg_at_start')}, at end {r['meta'].get('loadavg_at_end')} (shared, "
             "noisy machine: medians of repeated trials, min-max in results.json).")
    L += ["", "## Targets", "", "| target | measured | goal | met |", "|---|---:|---:|:---:|"]
    units = {k: u for k, _, _, _, u in TARGETS}
    for key, t in r.get("targets", {}).items():
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        L.append(f"| {t['description']} | {_fmt(t['value'], units[key])} | {t['target']} | {met} |")
    sus = r.get("sustained")
    if isinstance(sus, dict):
        searches = [sus] + [v for k, v in (sus.get("by_processes") or {}).items() if k != "1"]
        for one in (x for x in searches if isinstance(x, dict) and "steps" in x):
            L += _sustained_table(one)
    ops = r.get("operators")
    if isinstance(ops, dict) and "breakdown" in ops:
        b = ops["breakdown"]
        L += ["", "## Operators (in-process, no Kafka)", "",
              f"events/s per core (median of {ops['events_per_cpu_s']['trials']}): "
              f"**{_fmt(ops['events_per_s_per_core'])}** (min-max "
              f"{_fmt(ops['events_per_cpu_s']['min'])}-{_fmt(ops['events_per_cpu_s']['max'])}); "
              f"wall-clock {_fmt(ops['events_per_s_wall']['median'])} ev/s. "
              f"Every event accounted: {ops['accounting']['all_accounted']}.", "",
              "| stage | µs/event | % of instrumented pass |", "|---|---:|---:|"]
        for name, s in b["stages"].items():
            L.append(f"| {name} | {s['us_per_event']:.2f} | {s['pct_of_total']:.1f} |")
        if b.get("windows"):
            L += ["", f"per window judged (close + detectors + multivariate + model + threats): "
                  f"{b['us_per_window']} µs over {b['windows']:,} windows; per twin emitted "
                  f"(state read + risk + encoding): {b['us_per_twin']} µs over {b['twins']:,} "
                  "twins"]
        dp = b["decode_parts"]
        L += ["", "decode micro-benchmarks (µs/event): " + ", ".join(
            f"{k[:-3]} {v:.2f}" for k, v in dp.items() if k.endswith("_us"))]
        if "by_devices" in ops:
            L += ["", "Cost as the fleet grows (same event-time span, median of the trials):", "",
                  "| devices | events | events per CPU-second | µs CPU/event | accounted |",
                  "|---:|---:|---:|---:|:---:|"]
            for devices, f in ops["by_devices"].items():
                L.append(f"| {int(devices):,} | {f['events']:,} | "
                         f"{_fmt(f['events_per_cpu_s']['median'])} | {f['us_cpu_per_event']} | "
                         f"{f['all_accounted']} |")
    e2e = r.get("e2e")
    if isinstance(e2e, dict) and "throughput" in e2e:
        th = e2e["throughput"]
        L += ["", "## End to end (local Kafka broker)", "",
              f"- sustained: **{_fmt(e2e['events_per_s'])} ev/s** (median of "
              f"{th['events_per_s']['trials']}, min-max {_fmt(th['events_per_s']['min'])}-"
              f"{_fmt(th['events_per_s']['max'])}) over {th['messages']:,} messages; "
              f"{th['definition']}",
              f"- accounting: {th['accounting']}",
              f"- detection (throughput run): {th['detection']['detected_right_class']}/"
              f"{th['detection']['attacks']} attacks detected with the right class, "
              f"{th['detection']['false_alarms']} false alarms"]
        lat = e2e.get("latency")
        if isinstance(lat, dict) and "latency_ms" in lat:
            lr = lat["latency_ms"]["right_class"]
            aw = lat["latency_ms"]["append_minus_window_end"]
            L += [f"- latency (paced at {_fmt(lat['target_rate'])} ev/s, {lat['devices']:,} "
                  f"devices): p50 {_fmt(lr['p50'])} / p95 {_fmt(lr['p95'])} / p99 "
                  f"{_fmt(lr['p99'])} ms over {lr['n']} detected attacks; threat append time "
                  f"minus its window's end: p50 {_fmt(aw['p50'])} / p99 {_fmt(aw['p99'])} ms "
                  "(negative: fired before the window ended); pipeline delay (append - "
                  "evidence complete) p50 "
                  f"{_fmt((lat['latency_ms'].get('append_minus_evidence_complete') or {}).get('p50'))}"
                  " / p99 "
                  f"{_fmt((lat['latency_ms'].get('append_minus_evidence_complete') or {}).get('p99'))}"
                  " ms; "
                  f"{lat['definition']}",
                  f"- detection (paced run): {lat['detection']['detected_right_class']}/"
                  f"{lat['detection']['attacks']} right class, "
                  f"{lat['detection']['false_alarms']} false alarms; producer send lag "
                  f"{lat['producer']['send_lag_ms']}; dataflow poll behind event time "
                  f"{lat['run'].get('consume_lag_ms')}"]
            L += _latency_stages(lat["latency_ms"])
    peers = r.get("peers")
    if isinstance(peers, dict) and peers:
        L += ["", "## Peers (same input topic)", "",
              "| system | events/s | ours / peer | processed every event | version |",
              "|---|---:|---:|:---:|---|"]
        L.append(f"| twinguard (e2e, 1 worker) | {_fmt(_get(r, 'e2e', 'events_per_s'))} | 1 | "
                 f"yes | {r.get('versions', {}).get('twinguard')} |")
        for name, p in peers.items():
            if not isinstance(p, dict):
                continue
            if "error" in p and "events_per_s" not in p:
                L.append(f"| {name} | error: {p['error']} | | | |")
                continue
            L.append(f"| {name} | {_fmt(p.get('events_per_s'))} | "
                     f"{_fmt(p.get('ratio_ours_over_peer'))} | "
                     f"{p.get('processed_every_event')} | {p.get('version')} |")
        if "ratio_ours_over_strongest" in peers:
            L += ["", f"Ours / strongest peer: **{peers['ratio_ours_over_strongest']}x**."]
        if "note" in peers:
            L += ["", str(peers["note"])]
    sc = r.get("scaling")
    if isinstance(sc, dict) and "speedup_2_processes" in sc:
        L += ["", "## Scaling (python -m bytewax.run)", "",
              f"1 process {_fmt(sc['events_per_s_1_process']['median'])} ev/s, 2 processes "
              f"{_fmt(sc['events_per_s_2_processes']['median'])} ev/s: speedup "
              f"**{sc['speedup_2_processes']}x** ({sc['definition']})."]
        rows = sc.get("per_process_count") or []
        if rows:
            L += ["", "| processes | events/s | dataflow cores | CPU µs/event | projected ev/s per core "
                  "| partitions/worker |", "|---:|---:|---:|---:|---:|---:|"]
            L += [f"| {x['processes']} | {_fmt(x['events_per_s'])} | {_fmt(x['dataflow_cores'])} | "
                  f"{_fmt(x['cpu_us_per_event'])} | {_fmt(x['projected_events_per_s_per_core'])} | "
                  f"{_fmt(x['partitions_per_worker'])} |" for x in rows]
    mem = r.get("memory")
    if isinstance(mem, dict) and "sizes" in mem:
        L += ["", "## Memory (twin state)", "",
              "| devices | TwinStore bytes/device | slot bytes | RSS delta/device |",
              "|---:|---:|---:|---:|"]
        for s in mem["sizes"]:
            if "error" in s:
                L.append(f"| {s['devices']:,} | error: {s['error']} | | |")
            else:
                L.append(f"| {s['devices']:,} | {s['bytes_per_device']:,.0f} | "
                         f"{s['slot_bytes']:,} | {s['rss_delta_per_device']:,.0f} |")
    if isinstance(r.get("respond"), dict):
        from twinguard.benchmarks.respond_suite import markdown as respond_markdown

        L += respond_markdown(r["respond"])
    prof = r.get("profile")
    if isinstance(prof, dict):
        L += ["", "## Where the time goes (py-spy, own time; full lists in profile.txt)", ""]
        for name, p in prof.items():
            if isinstance(p, dict) and "top_self" in p:
                L.append(f"**{name}** ({p['samples']} samples): " + "; ".join(
                    f"{x['frame']} {x['pct']}%" for x in p["top_self"][:8]))
                L.append("")
    if r.get("errors"):
        L += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in r["errors"].items()]
    L += ["", "## Versions", "", "```", json.dumps(r.get("versions", {}), indent=1), "```", ""]
    return "\n".join(L)


def plots(r: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[str] = []
    bars: list[tuple[str, float, float, float]] = []  # label, median, min, max

    def add(label: str, stat: Any) -> None:
        if isinstance(stat, dict) and stat.get("median"):
            bars.append((label, stat["median"], stat["min"], stat["max"]))

    add("ours: operators\n(per core, no Kafka)", _get(r, "operators", "events_per_cpu_s"))
    add("ours: e2e Kafka\n(1 process)", _get(r, "e2e", "throughput", "events_per_s"))
    add("ours: bytewax.run\n1 process", _get(r, "scaling", "events_per_s_1_process"))
    add("ours: bytewax.run\n2 processes", _get(r, "scaling", "events_per_s_2_processes"))
    for name, label in (("bytewax_naive", "peer: Bytewax\nnaive"), ("quix", "peer: Quix\nStreams"),
                        ("bytewax_expert", "peer: Bytewax\nexpert (batched)"),
                        ("microbatch", "peer: micro-batch\nconsumer + polars")):
        v = _get(r, "peers", name, "events_per_s")
        if v:
            bars.append((label, float(v), float(v), float(v)))
    if bars:
        fig, ax = plt.subplots(figsize=(9, 4.8))
        ys = list(range(len(bars)))
        med = [b[1] for b in bars]
        err = [[b[1] - b[2] for b in bars], [b[3] - b[1] for b in bars]]
        colors = ["#1f77b4" if b[0].startswith("ours") else "#999999" for b in bars]
        ax.barh(ys, med, xerr=err, color=colors, capsize=3)
        ax.set_yticks(ys, [b[0] for b in bars])
        ax.set_xscale("log")
        ax.invert_yaxis()
        for y, b in zip(ys, bars, strict=True):
            ax.text(b[3] * 1.12, y, f"{b[1]:,.0f}", va="center", fontsize=8)
        ax.axvline(400_000, ls="--", color="red", lw=1, label="e2e target 400k ev/s")
        ax.axvline(1_000_000, ls=":", color="red", lw=1, label="operators target 1M ev/s/core")
        ax.set_xlabel("events/s (log scale; median, bars = min-max)")
        ax.set_title("twinguard throughput vs peers")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=110)
        plt.close(fig)
        made.append("throughput.png")
    samples = _get(r, "e2e", "latency", "latency_ms", "samples_right_class_ms")
    if samples:
        xs = sorted(s / 1000 for s in samples)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], drawstyle="steps-post")
        lr = _get(r, "e2e", "latency", "latency_ms", "right_class") or {}
        for q, style in (("p50", ":"), ("p95", "-."), ("p99", "--")):
            if lr.get(q) is not None:
                ax.axvline(lr[q] / 1000, ls=style, color="gray", lw=1,
                           label=f"{q} {lr[q] / 1000:.1f} s")
        ax.axvline(1.0, color="red", lw=1, label="target p99 1 s")
        ax.set_xlabel("attack's first event -> threat appended to Kafka (s)")
        ax.set_ylabel("fraction of detected attacks")
        ax.set_title("detection latency (paced at half the sustained rate)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    stages = _get(r, "operators", "breakdown", "stages")
    if stages:
        leaf = {k: v for k, v in stages.items() if k != "engine"}
        names = sorted(leaf, key=lambda k: -leaf[k]["us_per_event"])
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.barh(names, [leaf[k]["us_per_event"] for k in names], color="#1f77b4")
        ax.invert_yaxis()
        ax.set_xlabel("µs per event (one core)")
        ax.set_title("operators: where an event's time goes")
        fig.tight_layout()
        fig.savefig(out / "stages.png", dpi=110)
        plt.close(fig)
        made.append("stages.png")
    return made


def write(r: dict[str, Any], out: Path) -> None:
    """results.json, results.md and the plots into `out` (called after every suite)."""
    out.mkdir(parents=True, exist_ok=True)
    r["targets"] = targets(r)
    try:
        r["plots"] = plots(r, out)
    except Exception as e:  # noqa: BLE001 - a plot must never cost the measured numbers
        r.setdefault("errors", {})["plots"] = repr(e)
    (out / "results.json").write_text(json.dumps(r, indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(r))


def summary(r: dict[str, Any]) -> str:
    """The targets table for the terminal."""
    units = {k: u for k, _, _, _, u in TARGETS}
    lines = [f"{'target':<40}{'measured':>18}{'goal':>22}  met"]
    for key, t in r.get("targets", {}).items():
        met = {True: "yes", False: "no", None: "-"}[t["met"]]
        lines.append(f"{t['description']:<40}{_fmt(t['value'], units[key]):>18}"
                     f"{t['target']:>22}  {met}")
    if isinstance(r.get("respond"), dict):  # no goal in TARGETS: its numbers as measured
        from twinguard.benchmarks.respond_suite import markdown as respond_markdown

        lines += [x[2:].replace("**", "") for x in respond_markdown(r["respond"]) if x.startswith("- ")]
    for name, err in (r.get("errors") or {}).items():
        lines.append(f"error in {name}: {err}")
    return "\n".join(lines)


def _sustained_table(sus: dict[str, Any]) -> list[str]:
    """One search of the sustained suite: a row per step."""
    L = ["", f"## Sustained live rate, {sus.get('processes', 1)} process(es)", "",
         str(sus["definition"]) + ".", "",
         "| step | rate ev/s | devices | held | pipeline delay p50/p99 ms | append - window end p99 "
         "ms | consume lag p99 ms | longest poll gap ms | detection latency p50/p99 ms | dataflow "
         "cores | µs CPU/event | load 1m | why not |",
         "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for i, s in enumerate(sus["steps"], 1):
        cpu = s.get("cpu") or {}
        after_end = s.get("after_window_end_ms") or {}
        L.append(f"| {i} | {s['rate']:,} | {s['devices']:,} | {'yes' if s['held'] else 'no'} | "
                 f"{s['delay_ms'].get('p50')}/{s['delay_ms'].get('p99')} | "
                 f"{after_end.get('p99')} | {s['consume_lag_ms'].get('p99')} | "
                 f"{(s.get('poll_gap_ms') or {}).get('max')} | "
                 f"{s['latency_ms'].get('p50')}/{s['latency_ms'].get('p99')} | "
                 f"{cpu.get('dataflow_cores')} | {cpu.get('dataflow_cpu_us_per_event')} | "
                 f"{s['loadavg_1m']['before']}-{s['loadavg_1m']['after']} | "
                 f"{'; '.join(s['why_not'])} |")
    return L
