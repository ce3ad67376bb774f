"""results.md of the detection benchmark: one table, then per-dataset details and every command."""

from __future__ import annotations

from typing import Any


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _ttd(ev: dict[str, Any]) -> str:
    t = ev["time_to_detect_s"]
    return f"{_dur(t['median'])} / {_dur(t['p95'])} / {_dur(t['max'])}"


def _row(name: str, ev: dict[str, Any], synthetic_clock: bool = False) -> str:
    b = ev["row_level"]["binary"]
    macro = ev["row_level"].get("macro_f1")
    e, fa = ev["events"], ev["false_alarms"]
    if synthetic_clock:  # order and time are made up: only row metrics and counts mean something
        events, ttd, alarms = f"({e['detected']} / {e['attacks']} runs)", "n/a", f"({fa['count']} runs)"
    else:
        events, ttd = f"{e['detected']} / {e['attacks']}", _ttd(e)
        alarms = f"{_f(fa['per_device_day'])} ({fa['count']} over {fa['normal_device_days']:.1f} d)"
    return (f"| {name} | {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} | "
            f"{_f(macro)} | {events} | {ttd} | {alarms} |")


HEADER = ("| run | rows P | rows R | rows F1 | macro-F1 | events detected | time to detect "
          "median / p95 / max | false alarms per device-day |\n|---|---|---|---|---|---|---|---|")


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Detection on real datasets" + (f" (variant: --{results['variant']})"
                                          if results.get("variant", "default") != "default" else ""),
        "",
        f"Run {results['date']} at git {results['git']} on {m['cpu_model']} "
        f"({m['usable_cores']} usable cores, {m['ram_gb']} GB RAM), Python {m['python']}. "
        "Produced by `python -m twinguard.benchmarks.detection`; every number comes from the `twinguard` "
        "commands listed below, run as subprocesses. Never point-adjusted: row metrics count rows "
        "as flagged; an event is detected only by a flag on one of its own rows.",
        "",
        HEADER,
    ]
    ds = results["datasets"]
    if "batadal" in ds and "evaluation" in ds["batadal"]:
        lines.append(_row("BATADAL dataset04 (model from dataset03; row = hour)",
                          ds["batadal"]["evaluation"]))
    if "nab" in ds and "series" in ds["nab"]:
        for name, r in ds["nab"]["series"].items():
            lines.append(_row(f"NAB {name}", r))
    if "ton_iot" in ds and "devices" in ds["ton_iot"]:
        for name, r in ds["ton_iot"]["devices"].items():
            for mode in ("supervised", "unsupervised"):
                if mode in r:
                    lines.append(_row(f"TON_IoT {name} ({mode})", r[mode], synthetic_clock=True))
    lines += _totals(ds)
    lines += _tep_table(ds.get("tep", {}))
    lines += _smd_table(ds.get("smd", {}))
    if "ton_iot" in ds:
        lines += ["", "TON_IoT rows are in content-hash order on a synthetic 1 row/s clock (the "
                  "protocol removes time on purpose), so its event runs, times to detect and "
                  "per-day false alarms are artefacts: read its row columns."]
    for name, entry in ds.items():
        lines += ["", f"## {name}", ""]
        if "error" in entry:
            lines += ["**failed**: " + entry["error"].replace("\n", " ")[:600], ""]
        if "protocol" in entry:
            lines += [f"Protocol: {entry['protocol']}.", ""]
        for step in entry.get("preparation", []):
            lines.append(f"- preparation: {step}")
        lines += _details(name, entry)
        lines += ["", "Commands (in order):", "", "```"]
        lines += [c["command"] for c in entry.get("commands", [])]
        lines += ["```"]
    return "\n".join(lines) + "\n"


def _totals(ds: dict[str, Any]) -> list[str]:
    out = [""]
    if "nab" in ds and "totals" in ds["nab"]:
        t = ds["nab"]["totals"]
        out.append(f"NAB realKnownCause totals: {t['detected']} / {t['events']} windows detected, "
                   f"{t['false_alarms']} false alarms over {t['normal_device_days']} series-days "
                   f"= {_f(t['false_alarms_per_device_day'])} per series-day; rows pooled "
                   f"P={_f(t['rows_precision'])} R={_f(t['rows_recall'])}.")
    if "ton_iot" in ds and "totals" in ds["ton_iot"]:
        for mode, t in ds["ton_iot"]["totals"].items():
            out.append(f"TON_IoT {mode}, rows pooled over devices: P={_f(t['rows_precision'])} "
                       f"R={_f(t['rows_recall'])} F1={_f(t['rows_f1'])} "
                       f"(tp={t['tp']} fp={t['fp']} fn={t['fn']}).")
    return out


def _details(name: str, entry: dict[str, Any]) -> list[str]:
    if name == "batadal" and "evaluation" in entry:
        out = ["", "| attack | hours | detected | time to detect | classes flagged |",
               "|---|---|---|---|---|"]
        for i, e in enumerate(entry["evaluation"]["events"].get("list", []), 1):
            out.append(f"| {i} | {e['rows']} | {'yes' if e['detected'] else 'no'} | "
                       f"{_dur(e['time_to_detect_s'])} | {', '.join(e['threats']) or '-'} |")
        return out
    if name == "ton_iot" and "devices" in entry:
        out = ["", "| device | rows | distinct rows | distinct sensor vectors | train / test rows |"
               " note |", "|---|---|---|---|---|---|"]
        for dev, r in entry["devices"].items():
            out.append(f"| {dev} | {r['rows']} | {r['distinct_rows']} | "
                       f"{r['distinct_signal_vectors']} | {r['train_rows']} / {r['test_rows']} | "
                       f"{r.get('skipped', '')} |")
        return out
    return []


def _tep_table(entry: dict[str, Any]) -> list[str]:
    """Detection rate per fault next to the PCA anchor (T2 / Q) of tep/SOURCE.md."""
    if "faults" not in entry:
        return []
    sm, f = entry["summary"], entry["faults"]
    t2, q = sm["pca_anchor_false_alarm_rate_t2_q"]
    out = ["", f"TEP (model from d00): false alarms on d00_te {_f(sm['false_alarm_rate_d00_te'])} "
           f"(PCA anchor: T2 {t2}, Q {q}); on the fault files' first 160 rows "
           f"{_f(sm['false_alarm_rate_before_faults'])}; at or above the better anchor on "
           f"{sm['faults_at_or_above_anchor']} of {sm['faults_judged']} faults (3, 9, 15 not "
           f"judged); median detection delay {sm['median_delay_rows']} rows "
           f"({_dur(60 * 3 * (sm['median_delay_rows'] or 0))}).", "",
           "| fault | detection rate | PCA T2 / Q | delay (rows) | fault | detection rate | "
           "PCA T2 / Q | delay (rows) |", "|---|---|---|---|---|---|---|---|"]
    cells = []
    for k in sorted(int(x) for x in f if x != "0"):
        e = f[str(k)]
        mark = "" if k in (3, 9, 15) else (" ✓" if e["at_or_above_anchor"] else "")
        a = e["pca_anchor_t2_q"]
        cells.append(f"{k} | {_f(e['detection_rate'])}{mark} | {a[0]:.3f} / {a[1]:.3f} | "
                     f"{e['delay_rows'] if e['delay_rows'] is not None else '-'}")
    half = (len(cells) + 1) // 2
    for left, right in zip(cells[:half], [*cells[half:], " |  |  | "][:half], strict=True):
        out.append(f"| {left} | {right} |")
    return out


def _smd_table(entry: dict[str, Any]) -> list[str]:
    if "machines" not in entry:
        return []
    out = ["", "| SMD machine | rows P | rows R | point-wise F1 | PCA anchor F1 (oracle threshold) "
           "| segments detected | event-level F1 | false alarms per day |",
           "|---|---|---|---|---|---|---|---|"]
    for name, r in entry["machines"].items():
        b, e, fa = r["row_level"]["binary"], r["events"], r["false_alarms"]
        out.append(f"| {name} | {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} | "
                   f"{_f(r['pca_anchor_pointwise_f1_oracle'])} | {e['detected']} / {e['attacks']} | "
                   f"{_f(r['event_f1'])} | {_f(fa['per_device_day'])} |")
    return out
