"""The campaign report: CSV of every case, summary (Markdown and JSON), PNG plots.

:func:`write_report` reads ``DIR/cases.jsonl`` (and ``DIR/campaign.json``) and writes

- ``cases.csv``: one row per case, sorted by case id;
- ``summary.json`` and ``summary.md``: probability of detection and of correct isolation by hole
  diameter with exact (Clopper-Pearson) 95 % intervals; latency percentiles (p50, p90, p99) and
  their ratio to the statistical floor; false alarms per simulated day of nominal time with a
  one-sided 95 % upper bound; the acceptance targets and whether each is met; the failed cases;
- ``detection.png`` and ``latency.png``: detection/isolation probability and latency against hole
  diameter (matplotlib, Agg backend, imported only here).

Cases that failed (an exception or a timeout) are not counted as detections or misses; they are
listed, and any failure fails the acceptance check. Raises :class:`ReportError` when ``DIR``
holds no campaign.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import targets as campaign_targets
from .executor import MANIFEST_FILE, RESULTS_FILE, read_records
from .targets import target as _target
from ..errors import InputError

#: Acceptance targets (docs/detection.md): detection and correct isolation for every hole >= 1 mm,
#: zero false alarms over >= 100 nominal days, median latency <= 2x the floor.
TARGET_PD = 0.99
TARGET_MIN_DIAMETER_MM = 1.0
TARGET_NOMINAL_DAYS = 100.0
TARGET_LATENCY_RATIO = 2.0

CSV_COLUMNS = [
    "id", "group", "index", "kind", "scenario", "seed", "status", "error",
    "leak_module", "diameter_mm", "cd", "leak_start_s", "sensor_faults", "valve_faults", "vary",
    "detected", "detected_s", "latency_s", "floor_s", "latency_ratio",
    "located_module", "isolation_correct", "sealed_modules",
    "diameter_est_mm", "diameter_error", "reserve_est_s", "reserve_true_s", "reserve_error",
    "false_alarms", "suspicions", "sim_s", "wall_s", "cpu_s", "attempts",
    "fault_types", "blind_modules", "hatch_ops", "leak_rate_kg_day", "leak_kg_day", "located_s",
    "sealed_s", "seals", "false_seals", "estimate_event", "estimate_s", "diameter_error_10min",
    "reserve_error_10min",
]


class ReportError(InputError):
    """The directory holds no campaign results."""


@dataclass
class ReportFiles:
    csv: Path
    summary_json: Path
    summary_md: Path
    plots: list[Path]
    summary: dict[str, Any]


# --------------------------------------------------------------------------------------------
# statistics


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
             for i in range(k + 1)]
    m = max(terms)
    return min(1.0, math.exp(m) * sum(math.exp(t - m) for t in terms))


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of an increasing ``f`` on [lo, hi]."""
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval for a proportion (0, 1 for n = 0)."""
    if n == 0:
        return 0.0, 1.0
    a = (1.0 - confidence) / 2.0
    x = successes
    # lower: P(X >= x; p) = a  <=>  1 - cdf(x-1; p) - a = 0, increasing in p
    lo = 0.0 if x == 0 else _bisect(lambda p: (1.0 - _binom_cdf(x - 1, n, p)) - a, 0.0, 1.0)
    # upper: P(X <= x; p) = a, decreasing in p
    hi = 1.0 if x == n else _bisect(lambda p: a - _binom_cdf(x, n, p), 0.0, 1.0)
    return lo, hi


def poisson_upper(count: int, confidence: float = 0.95) -> float:
    """One-sided upper bound on a Poisson mean after observing ``count`` events (3.0 for 0)."""
    def cdf(mu: float) -> float:
        return sum(math.exp(-mu + i * math.log(mu) - math.lgamma(i + 1)) for i in range(count + 1)) if mu > 0 else 1.0
    return _bisect(lambda mu: (1.0 - confidence) - cdf(mu), 0.0, 10.0 * (count + 5))


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100.0
    i = int(math.floor(pos))
    j = min(i + 1, len(v) - 1)
    return v[i] + (v[j] - v[i]) * (pos - i)


# --------------------------------------------------------------------------------------------
# summary


def _bins(records: list[dict[str, Any]]) -> list[tuple[str, float, list[dict[str, Any]]]]:
    """Leak records grouped by hole diameter: exact values when there are few distinct ones,
    else 1 mm wide bins. Returns (label, representative diameter mm, records)."""
    diameters = sorted({round(float(r["diameter_mm"]), 3) for r in records})
    groups: dict[Any, list[dict[str, Any]]] = {}
    if len(diameters) <= 20:
        for r in records:
            groups.setdefault(round(float(r["diameter_mm"]), 3), []).append(r)
        return [(f"{d:g}", d, groups[d]) for d in sorted(groups)]
    for r in records:
        groups.setdefault(math.floor(float(r["diameter_mm"])), []).append(r)
    return [(f"{k:g}-{k + 1:g}", k + 0.5, groups[k]) for k in sorted(groups)]


def _rate(recs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    n = len(recs)
    x = sum(bool(r.get(key)) for r in recs)
    lo, hi = clopper_pearson(x, n)
    return {"n": n, "k": x, "p": (x / n) if n else None, "lo": lo, "hi": hi}


def _latency(recs: list[dict[str, Any]]) -> dict[str, Any]:
    lat = [float(r["latency_s"]) for r in recs if r.get("detected") and r.get("latency_s") is not None]
    ratio = [float(r["latency_ratio"]) for r in recs
             if r.get("detected") and r.get("latency_ratio") is not None]
    floor = [float(r["floor_s"]) for r in recs if r.get("floor_s") is not None]
    return {
        "n": len(lat),
        "p50_s": percentile(lat, 50), "p90_s": percentile(lat, 90), "p99_s": percentile(lat, 99),
        "ratio_p50": percentile(ratio, 50), "ratio_p90": percentile(ratio, 90),
        "ratio_p99": percentile(ratio, 99),
        "floor_p50_s": percentile(floor, 50),
    }


def summarize(records: list[dict[str, Any]], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of a list of case records (see module doc)."""
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
    leaks = [r for r in ok if r.get("kind") == "leak"]
    nominal = [r for r in ok if r.get("kind") == "nominal"]
    by_diameter = []
    # leaks given by mass rate (open-station leaks) have their own table
    for label, d, recs in _bins([r for r in leaks if r.get("leak_rate_kg_day") is None]):
        by_diameter.append({
            "diameter_mm": label, "diameter_value_mm": d, "cases": len(recs),
            "detection": _rate(recs, "detected"),
            "isolation": _rate(recs, "isolation_correct"),
            "latency": _latency(recs),
            "with_sensor_fault": _rate([r for r in recs if campaign_targets.has_fault(r)],
                                       "isolation_correct"),
        })
    nominal_days = sum(float(r.get("sim_s") or 0.0) for r in nominal) / 86400.0
    fa_nominal = sum(int(r.get("false_alarms") or 0) for r in nominal)
    fa_leak = sum(int(r.get("false_alarms") or 0) for r in leaks)
    nom = {
        "cases": len(nominal),
        "sim_days": nominal_days,
        "false_alarms": fa_nominal,
        "false_alarms_per_day": (fa_nominal / nominal_days) if nominal_days else None,
        "false_alarms_per_day_upper95": (poisson_upper(fa_nominal) / nominal_days) if nominal_days else None,
        "suspicions": sum(int(r.get("suspicions") or 0) for r in nominal),
        "cases_with_alarm": sorted(r["id"] for r in nominal if int(r.get("false_alarms") or 0) > 0),
        "cases_with_suspicion": sorted(r["id"] for r in nominal if int(r.get("suspicions") or 0) > 0),
    }
    summary = {
        "campaign": manifest or {},
        "cases": len(records),
        "ok": len(ok),
        "failed": len(failed),
        "leak_cases": len(leaks),
        "nominal_cases": len(nominal),
        "by_diameter": by_diameter,
        "leaks": {
            "detection": _rate(leaks, "detected"),
            "isolation": _rate(leaks, "isolation_correct"),
            "latency": _latency(leaks),
            "false_alarms_before_leak": fa_leak,
            "diameter_error_p50": percentile([abs(float(r["diameter_error"])) for r in leaks
                                              if r.get("diameter_error") is not None], 50),
            "reserve_error_p50": percentile([abs(float(r["reserve_error"])) for r in leaks
                                             if r.get("reserve_error") is not None], 50),
        },
        "nominal": nom,
        "failures": [{"id": r["id"], "seed": r.get("seed"), "status": r.get("status"), "error": r.get("error")}
                     for r in sorted(failed, key=lambda r: r["id"])],
        "misses": sorted(r["id"] for r in leaks if not r.get("detected")),
        "wrong_isolation": sorted(r["id"] for r in leaks if r.get("detected") and not r.get("isolation_correct")),
    }
    summary["extra"] = campaign_targets.extra_summary(ok, percentile, _rate)
    profile = (manifest or {}).get("targets", "acceptance")
    summary["target_profile"] = profile
    summary["targets"] = (campaign_targets.robustness_targets(summary) if profile == "robustness"
                          else _targets(summary))
    return summary


def _targets(s: dict[str, Any]) -> list[dict[str, Any]]:
    big = [b for b in s["by_diameter"] if b["diameter_value_mm"] >= TARGET_MIN_DIAMETER_MM]

    def worst(key: str) -> float | None:
        ps = [b[key]["p"] for b in big if b[key]["p"] is not None]
        return min(ps) if ps else None

    ratios = [b["latency"]["ratio_p50"] for b in big if b["latency"]["ratio_p50"] is not None]
    pd, pi = worst("detection"), worst("isolation")
    nom = s["nominal"]
    alarms = nom["false_alarms"] + s["leaks"]["false_alarms_before_leak"]
    days_short = alarms == 0 and nom["sim_days"] < TARGET_NOMINAL_DAYS
    out = [
        _target(f"detection >= {TARGET_PD:.0%} for every hole >= {TARGET_MIN_DIAMETER_MM:g} mm",
                pd, None if pd is None else f"{pd:.1%} (worst hole size)", pd is not None and pd >= TARGET_PD,
                f"no leak case with a hole >= {TARGET_MIN_DIAMETER_MM:g} mm"),
        _target(f"correct isolation >= {TARGET_PD:.0%} for every hole >= {TARGET_MIN_DIAMETER_MM:g} mm",
                pi, None if pi is None else f"{pi:.1%} (worst hole size)", pi is not None and pi >= TARGET_PD,
                f"no leak case with a hole >= {TARGET_MIN_DIAMETER_MM:g} mm"),
        _target(f"zero false alarms over >= {TARGET_NOMINAL_DAYS:g} nominal simulated days",
                None if days_short else alarms,
                f"{alarms} alarms in {nom['sim_days']:.2f} days ({nom['suspicions']} leak-suspected events)",
                alarms == 0 and not days_short,
                f"0 alarms, but only {nom['sim_days']:.2f} of the {TARGET_NOMINAL_DAYS:g} nominal days needed"
                if nom["cases"] else "no nominal case"),
        _target(f"median latency <= {TARGET_LATENCY_RATIO:g}x the floor (every hole size)",
                max(ratios) if ratios else None,
                f"{max(ratios):.2f}x the floor (worst hole size)" if ratios else None,
                bool(ratios) and max(ratios) <= TARGET_LATENCY_RATIO,
                f"no detected leak with a hole >= {TARGET_MIN_DIAMETER_MM:g} mm"),
        _target("no failed case", s["failed"], f"{s['failed']} failed of {s['cases']}", s["failed"] == 0, ""),
    ]
    return out


# --------------------------------------------------------------------------------------------
# files


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _pct(rate: dict[str, Any]) -> str:
    if rate["p"] is None:
        return "-"
    return f"{rate['p']:.1%} ({rate['k']}/{rate['n']}; {rate['lo']:.1%}-{rate['hi']:.1%})"


def render_markdown(s: dict[str, Any]) -> str:
    m = s.get("campaign") or {}
    lines = [f"# Campaign {m.get('spec', '?')}", ""]
    codes = sorted({r.get("code", "?") for r in m.get("runs", [])})
    if codes:
        lines += [f"Spec {m.get('source', '?')} (seed {m.get('seed', '?')}); run with "
                  + "; ".join(codes) + ".", ""]
    lines.append(f"{s['cases']} cases of {m.get('total', '?')}: {s['ok']} ran, {s['failed']} failed; "
                 f"{s['leak_cases']} leak cases, {s['nominal_cases']} nominal cases "
                 f"({s['nominal']['sim_days']:.1f} simulated days).")
    lines += ["", f"## Targets ({s.get('target_profile', 'acceptance')})", "", "| target | value | met |",
              "|---|---|---|"]
    for t in s["targets"]:
        status = {"met": "yes", "MISSED": "**no**"}.get(t.get("status", ""), "n/a")
        lines.append(f"| {t['target']} | {t.get('shown') or _fmt(t['value'])} | {status} |")
    lines += ["", "## Detection and isolation by hole diameter",
              "", "Probabilities with exact (Clopper-Pearson) 95 % intervals; latency from the leak start "
              "to the confirmed alarm; ratio = latency / statistical floor (docs/architecture.md).", "",
              "| hole mm | cases | P(detect) | P(correct isolation) | isolated with a sensor fault "
              "| latency p50 / p90 / p99 s | ratio p50 / p90 / p99 | floor p50 s |",
              "|---|---|---|---|---|---|---|---|"]
    for b in s["by_diameter"]:
        lat = b["latency"]
        lines.append(
            f"| {b['diameter_mm']} | {b['cases']} | {_pct(b['detection'])} | {_pct(b['isolation'])} | "
            f"{b['with_sensor_fault']['k']}/{b['with_sensor_fault']['n']} | "
            f"{_fmt(lat['p50_s'], '.0f')} / {_fmt(lat['p90_s'], '.0f')} / {_fmt(lat['p99_s'], '.0f')} | "
            f"{_fmt(lat['ratio_p50'], '.2f')} / {_fmt(lat['ratio_p90'], '.2f')} / {_fmt(lat['ratio_p99'], '.2f')} | "
            f"{_fmt(lat['floor_p50_s'], '.0f')} |")
    lk = s["leaks"]
    lines += ["", f"All leak cases: detection {_pct(lk['detection'])}, correct isolation "
              f"{_pct(lk['isolation'])}; median |hole-diameter error| {_fmt(lk['diameter_error_p50'], '.1%')}, "
              f"median |reserve-time error| {_fmt(lk['reserve_error_p50'], '.1%')}; "
              f"alarms before the leak started: {lk['false_alarms_before_leak']}."]
    nom = s["nominal"]
    lines += ["", "## False alarms (nominal cases)", "",
              f"{nom['false_alarms']} alarms in {nom['sim_days']:.2f} simulated days over {nom['cases']} cases: "
              f"{_fmt(nom['false_alarms_per_day'], '.3g')} per day (95 % upper bound "
              f"{_fmt(nom['false_alarms_per_day_upper95'], '.3g')} per day); "
              f"{nom['suspicions']} leak-suspected events."]
    if nom["cases_with_alarm"]:
        lines.append("Cases with an alarm: " + ", ".join(nom["cases_with_alarm"]) + ".")
    if nom["cases_with_suspicion"]:
        lines.append("Cases with a leak-suspected event (not an alarm): "
                     + ", ".join(nom["cases_with_suspicion"]) + ".")
    lines += campaign_targets.render_extra(s)
    if s["misses"] or s["wrong_isolation"]:
        lines += ["", "## Misses and wrong isolations", ""]
        if s["misses"]:
            lines.append("Not detected: " + ", ".join(s["misses"]) + ".")
        if s["wrong_isolation"]:
            lines.append("Detected but isolated wrongly or not at all: " + ", ".join(s["wrong_isolation"]) + ".")
    if s["failures"]:
        lines += ["", "## Failed cases", "", "| case | seed | status | error |", "|---|---|---|---|"]
        for f in s["failures"]:
            lines.append(f"| {f['id']} | {f['seed']} | {f['status']} | {str(f['error']).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_csv(records: list[dict[str, Any]], path: Path) -> Path:
    extra = sorted({k for r in records for k in r} - set(CSV_COLUMNS) - {"traceback"})
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS + extra, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: ("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)
                        for k, v in r.items()})
    return path


def write_plots(summary: dict[str, Any], records: list[dict[str, Any]], directory: Path) -> list[Path]:
    """detection.png and latency.png (none when there are no leak cases)."""
    if not summary["by_diameter"]:
        return []
    # deferred: matplotlib costs about 0.2 s to import, and only the plots need it
    import matplotlib

    matplotlib.use("Agg")  # no display; chosen before pyplot is imported
    # deferred with matplotlib, after its backend is chosen
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # deferred: as pyplot

    bins = summary["by_diameter"]
    x = [b["diameter_value_mm"] for b in bins]
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.2))
    dx = 0.012 * ((max(x) - min(x)) or 10.0)  # side by side, so equal values stay visible
    for key, label, marker, shift in (("detection", "P(detect)", "o", -dx),
                                      ("isolation", "P(correct isolation)", "s", dx)):
        p = [b[key]["p"] if b[key]["p"] is not None else float("nan") for b in bins]
        lo = [pp - b[key]["lo"] for pp, b in zip(p, bins)]
        hi = [b[key]["hi"] - pp for pp, b in zip(p, bins)]
        ax.errorbar([xx + shift for xx in x], p, yerr=[lo, hi], marker=marker, capsize=3, label=label)
    ax.axhline(TARGET_PD, color="grey", ls="--", lw=1, label=f"target {TARGET_PD:.0%}")
    ax.set_xlabel("hole diameter, mm")
    ax.set_ylabel("probability (95 % CI)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(f"{summary['campaign'].get('spec', '')}: detection and isolation")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths.append(directory / "detection.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    leaks = [r for r in records if r.get("status") == "ok" and r.get("kind") == "leak"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    det = [r for r in leaks if r.get("detected") and r.get("latency_s") is not None]
    ax.scatter([float(r["diameter_mm"]) for r in det], [float(r["latency_s"]) for r in det], s=12,
               alpha=0.6, label="latency per case")
    p50 = [b["latency"]["p50_s"] for b in bins]
    ax.plot([xx for xx, v in zip(x, p50) if v is not None], [v for v in p50 if v is not None], "k-o", ms=4,
            label="median")
    fl = [(xx, b["latency"]["floor_p50_s"]) for xx, b in zip(x, bins) if b["latency"]["floor_p50_s"]]
    if fl:
        # markers as well as lines: with one hole size a line alone would be a single invisible point
        ax.plot([a for a, _ in fl], [f for _, f in fl], "--_", color="tab:red", ms=18, mew=2,
                label="statistical floor")
        ax.plot([a for a, _ in fl], [TARGET_LATENCY_RATIO * f for _, f in fl], ":_", color="tab:orange",
                ms=18, mew=2, label=f"{TARGET_LATENCY_RATIO:g}x floor (target)")
    ax.set_yscale("log")
    # 1-2-5 ticks with plain labels: a range within one decade still gets labelled ticks
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(base=10.0, subs=tuple(range(1, 10))))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ys = [float(r["latency_s"]) for r in det] + [f for _, f in fl] + [TARGET_LATENCY_RATIO * f for _, f in fl]
    if ys:
        lo, hi = min(ys), max(ys)
        ax.set_ylim(lo / 1.6, hi * 1.6)  # at least one 1-2-5 tick inside whatever the range
    ax.set_xlabel("hole diameter, mm")
    ax.set_ylabel("detection latency, s")
    ax.set_title(f"{summary['campaign'].get('spec', '')}: detection latency")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    paths.append(directory / "latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(directory: str | Path) -> ReportFiles:
    """(Re-)render the report of the campaign in ``directory``."""
    directory = Path(directory)
    if not (directory / RESULTS_FILE).exists():
        raise ReportError(f"{directory}: no campaign results here (expected {RESULTS_FILE})")
    manifest: dict[str, Any] = {}
    if (directory / MANIFEST_FILE).exists():
        try:
            manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ReportError(f"{directory / MANIFEST_FILE}: not valid JSON: {exc}") from exc
    records = sorted(read_records(directory).values(), key=lambda r: r["id"])
    summary = summarize(records, manifest)
    csv_path = write_csv(records, directory / "cases.csv")
    js = directory / "summary.json"
    js.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md = directory / "summary.md"
    md.write_text(render_markdown(summary), encoding="utf-8")
    plots = write_plots(summary, records, directory)
    return ReportFiles(csv=csv_path, summary_json=js, summary_md=md, plots=plots, summary=summary)
