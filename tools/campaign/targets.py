"""The robustness part of a campaign report: faults by kind and channel type, open-station
leaks, estimates after sealing, seals, and the ``robustness`` target profile.

A spec chooses its targets with its top-level ``targets`` key (``acceptance``, the default, or
``robustness``); the campaign directory's ``campaign.json`` records it. The ``robustness``
targets (:func:`robustness_targets`):

1. nominal days: 0 leak alarms and 0 modules sealed over >= 300 simulated days (and no alarm
   before the leak started in a leak case);
2. 100 % correct isolation, with no false seal, of every hole >= 1 mm that has a sensor fault
   (any kind, any channel type, or a blind module);
3. >= 95 % of open-station leaks (groups that give the leak as ``rate_kg_day``) of >= 1 kg/day
   detected and located, both within 24 h of the leak start;
4. hole-diameter estimate 10 min after sealing: median |error| <= 5 %, p95 <= 15 %;
5. reserve-time estimate 10 min after sealing: median |error| <= 5 %, p95 <= 10 %;
6. median latency <= 1.5x the statistical floor for every hole size from 1 to 10 mm;
7. no failed case.
"""

from __future__ import annotations

from typing import Any, Callable

TARGET_NOMINAL_DAYS = 300.0
TARGET_MIN_DIAMETER_MM = 1.0
TARGET_MAX_DIAMETER_MM = 10.0
TARGET_OPEN_RATE_KG_DAY = 1.0
TARGET_OPEN_FRACTION = 0.95
TARGET_OPEN_WITHIN_S = 86400.0
TARGET_DIAMETER_P50 = 0.05
TARGET_DIAMETER_P95 = 0.15
TARGET_RESERVE_P50 = 0.05
TARGET_RESERVE_P95 = 0.10
TARGET_LATENCY_RATIO = 1.5

#: open-station leak rate bins, kg/day: [lo, hi)
OPEN_RATE_BINS = ((0.0, 1.0), (1.0, 2.0), (2.0, 5.0), (5.0, float("inf")))


def _faults(r: dict[str, Any]) -> list[str]:
    """The fault types of a record; records of older campaigns have only the drawn pressure
    faults as ``kind@sensor`` text."""
    types = r.get("fault_types")
    if isinstance(types, list):
        return types
    text = r.get("sensor_faults") or ""
    return [f"pressure/{item.split('@')[0]}" for item in text.split()]


def has_fault(r: dict[str, Any]) -> bool:
    return bool(_faults(r))


def _within(r: dict[str, Any], key: str, limit_s: float) -> bool:
    t, start = r.get(key), r.get("leak_start_s")
    return t is not None and start is not None and float(t) - float(start) <= limit_s


def open_located(r: dict[str, Any]) -> bool:
    """Detected and correctly located, both within 24 h of the leak start."""
    return (bool(r.get("detected")) and _within(r, "detected_s", TARGET_OPEN_WITHIN_S)
            and bool(r.get("isolation_correct")) and _within(r, "located_s", TARGET_OPEN_WITHIN_S))


def clean_isolation(r: dict[str, Any]) -> bool:
    """Correct isolation and no false (second) seal."""
    return bool(r.get("isolation_correct")) and not int(r.get("false_seals") or 0)


def extra_summary(ok: list[dict[str, Any]], percentile: Callable[[list[float], float], float | None],
                  rate: Callable[[list[dict[str, Any]], str], dict[str, Any]]) -> dict[str, Any]:
    """Faults by type, open-station leaks, estimates after sealing and seals of the ``ok``
    records (the report's percentile and rate helpers passed in)."""
    leaks = [r for r in ok if r.get("kind") == "leak"]
    nominal = [r for r in ok if r.get("kind") == "nominal"]
    types = sorted({t for r in ok for t in _faults(r)})
    faults = []
    for t in types + ["any", "none"]:
        def match(r: dict[str, Any]) -> bool:
            fs = _faults(r)
            return bool(fs) if t == "any" else (not fs) if t == "none" else t in fs
        lk = [r for r in leaks if match(r)]
        nm = [r for r in nominal if match(r)]
        faults.append({
            "fault": t, "leak_cases": len(lk), "isolated": sum(clean_isolation(r) for r in lk),
            "detected": sum(bool(r.get("detected")) for r in lk),
            "nominal_cases": len(nm), "nominal_days": sum(float(r.get("sim_s") or 0.0) for r in nm) / 86400.0,
            "alarms": sum(int(r.get("false_alarms") or 0) for r in nm),
            "seals": sum(int(r.get("seals") or 0) for r in nm),
            "alarms_before_leak": sum(int(r.get("false_alarms") or 0) for r in lk),
        })
    open_leaks = [r for r in leaks if r.get("leak_rate_kg_day") is not None]
    open_bins = []
    for lo, hi in OPEN_RATE_BINS:
        recs = [r for r in open_leaks if lo <= float(r["leak_rate_kg_day"]) < hi]
        if recs:
            lat = [float(r["latency_s"]) for r in recs if r.get("detected") and r.get("latency_s") is not None]
            open_bins.append({"rate_kg_day": f"{lo:g}-{hi:g}", "lo": lo, "hi": hi, "cases": len(recs),
                              "located_24h": rate([{"x": open_located(r)} for r in recs], "x"),
                              "latency_p50_s": percentile(lat, 50)})
    big_open = [r for r in open_leaks if float(r["leak_rate_kg_day"]) >= TARGET_OPEN_RATE_KG_DAY]
    d_err = [abs(float(r["diameter_error_10min"])) for r in leaks if r.get("diameter_error_10min") is not None]
    r_err = [abs(float(r["reserve_error_10min"])) for r in leaks if r.get("reserve_error_10min") is not None]
    return {
        "faults": faults,
        "open_station": {"by_rate": open_bins,
                         "located_24h_1kg": rate([{"x": open_located(r)} for r in big_open], "x")},
        "estimates_10min": {
            "diameter_n": len(d_err), "diameter_p50": percentile(d_err, 50), "diameter_p95": percentile(d_err, 95),
            "reserve_n": len(r_err), "reserve_p50": percentile(r_err, 50), "reserve_p95": percentile(r_err, 95),
            "from_estimate_updated": sum(r.get("estimate_event") == "ESTIMATE_UPDATED" for r in leaks),
            "from_leak_located": sum(r.get("estimate_event") == "LEAK_LOCATED" for r in leaks),
        },
        "seals": {
            "nominal": sum(int(r.get("seals") or 0) for r in nominal),
            "nominal_cases_with_seal": sorted(r["id"] for r in nominal if int(r.get("seals") or 0)),
            "false_in_leak_cases": sum(int(r.get("false_seals") or 0) for r in leaks),
            "leak_cases_with_false_seal": sorted(r["id"] for r in leaks if int(r.get("false_seals") or 0)),
        },
        "isolation_with_fault": rate(
            [{"x": clean_isolation(r)} for r in leaks
             if has_fault(r) and r.get("diameter_mm") is not None
             and float(r["diameter_mm"]) >= TARGET_MIN_DIAMETER_MM and r.get("leak_rate_kg_day") is None], "x"),
    }


def target(name: str, value: Any, shown: str | None, met: bool, why_na: str) -> dict[str, Any]:
    """One acceptance target: ``status`` is ``met``, ``MISSED`` or ``n/a`` (the campaign has no
    cases to judge it by: ``shown`` says why). ``met`` stays a bool; ``applicable`` is False for
    n/a, and ``campaign --check`` fails only on an applicable target that is not met."""
    applicable = value is not None
    return {"target": name, "value": value, "shown": shown if applicable else why_na,
            "applicable": applicable, "met": applicable and met,
            "status": "n/a" if not applicable else ("met" if met else "MISSED")}


def _pct(k: int, n: int) -> str:
    return f"{k / n:.1%} ({k}/{n})"


def robustness_targets(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``robustness`` profile's targets of a summary (see the module doc)."""
    nom, ex = s["nominal"], s["extra"]
    seals = ex["seals"]
    iso = ex["isolation_with_fault"]
    open_rate = ex["open_station"]["located_24h_1kg"]
    est = ex["estimates_10min"]
    sized = [b for b in s["by_diameter"]
             if TARGET_MIN_DIAMETER_MM <= b["diameter_value_mm"] <= TARGET_MAX_DIAMETER_MM + 0.5]
    ratios = [b["latency"]["ratio_p50"] for b in sized]

    def le(v: float | None, limit: float) -> bool:
        return v is not None and v <= limit

    alarms = nom["false_alarms"] + s["leaks"]["false_alarms_before_leak"]
    days_short = alarms == 0 and seals["nominal"] == 0 and nom["sim_days"] < TARGET_NOMINAL_DAYS
    worst = max((r for r in ratios if r is not None), default=None)
    return [
        target(f"0 leak alarms and 0 modules sealed over >= {TARGET_NOMINAL_DAYS:g} nominal days",
               None if days_short else alarms + seals["nominal"],
               f"{nom['false_alarms']} alarms, {seals['nominal']} seals in {nom['sim_days']:.1f} days; "
               f"{s['leaks']['false_alarms_before_leak']} alarms before a leak started",
               alarms == 0 and seals["nominal"] == 0,
               f"0 alarms and 0 seals, but only {nom['sim_days']:.2f} of the {TARGET_NOMINAL_DAYS:g} nominal "
               "days needed" if nom["cases"] else "no nominal case"),
        target(f"100 % correct isolation (no false seal) for holes >= {TARGET_MIN_DIAMETER_MM:g} mm "
               "with one sensor fault",
               iso["k"] / iso["n"] if iso["n"] else None, _pct(iso["k"], iso["n"]) if iso["n"] else None,
               iso["n"] > 0 and iso["k"] == iso["n"], "no leak case with a sensor fault"),
        target(f">= {TARGET_OPEN_FRACTION:.0%} of open-station leaks >= {TARGET_OPEN_RATE_KG_DAY:g} kg/day "
               "detected and located within 24 h",
               open_rate["k"] / open_rate["n"] if open_rate["n"] else None,
               _pct(open_rate["k"], open_rate["n"]) if open_rate["n"] else None,
               open_rate["n"] > 0 and open_rate["k"] >= TARGET_OPEN_FRACTION * open_rate["n"],
               f"no open-station leak of {TARGET_OPEN_RATE_KG_DAY:g} kg/day or more"),
        target(f"hole estimate 10 min after sealing: median |error| <= {TARGET_DIAMETER_P50:.0%}, "
               f"p95 <= {TARGET_DIAMETER_P95:.0%}",
               est["diameter_p50"], _pair(est["diameter_p50"], est["diameter_p95"], est["diameter_n"]),
               le(est["diameter_p50"], TARGET_DIAMETER_P50) and le(est["diameter_p95"], TARGET_DIAMETER_P95),
               "no sealed leak with an estimate 10 min later"),
        target(f"reserve estimate 10 min after sealing: median |error| <= {TARGET_RESERVE_P50:.0%}, "
               f"p95 <= {TARGET_RESERVE_P95:.0%}",
               est["reserve_p50"], _pair(est["reserve_p50"], est["reserve_p95"], est["reserve_n"]),
               le(est["reserve_p50"], TARGET_RESERVE_P50) and le(est["reserve_p95"], TARGET_RESERVE_P95),
               "no sealed leak with an estimate 10 min later"),
        target(f"median latency <= {TARGET_LATENCY_RATIO:g}x the floor for every hole size "
               f"{TARGET_MIN_DIAMETER_MM:g}-{TARGET_MAX_DIAMETER_MM:g} mm",
               worst, f"{worst:.2f}x the floor (worst hole size)" if worst is not None else None,
               bool(ratios) and all(le(r, TARGET_LATENCY_RATIO) for r in ratios),
               f"no detected leak of {TARGET_MIN_DIAMETER_MM:g}-{TARGET_MAX_DIAMETER_MM:g} mm"),
        target("no failed case", s["failed"], f"{s['failed']} failed of {s['cases']}", s["failed"] == 0, ""),
    ]


def _pair(p50: float | None, p95: float | None, n: int) -> str:
    if p50 is None or p95 is None:
        return f"- (n {n})"
    return f"{p50:.1%} / {p95:.1%} (n {n})"


def render_extra(s: dict[str, Any]) -> list[str]:
    """Markdown lines: sensor faults by kind and channel type, open-station leaks, estimates
    after sealing, seals."""
    ex = s["extra"]
    lines = ["", "## Sensor faults by kind and channel type", "",
             "Every fault a case's scenario holds (drawn or from its base scenario), as "
             "`<channel type>/<kind>` or `blind_module` (all pressure sensors of a module out); a "
             "case with two faults counts in both rows. Leak cases: correctly isolated with no false "
             "seal / cases; nominal cases: leak alarms and seals.", "",
             "| fault | leak cases | isolated | detected | alarms before leak | nominal cases | nominal days "
             "| alarms | seals |", "|---|---|---|---|---|---|---|---|---|"]
    for f in ex["faults"]:
        lines.append(f"| {f['fault']} | {f['leak_cases']} | {f['isolated']}/{f['leak_cases']} | "
                     f"{f['detected']}/{f['leak_cases']} | {f['alarms_before_leak']} | {f['nominal_cases']} | "
                     f"{f['nominal_days']:.1f} | {f['alarms']} | {f['seals']} |")
    op = ex["open_station"]
    if op["by_rate"]:
        lines += ["", "## Open-station leaks (given by mass rate)", "",
                  "Detected and correctly located, both within 24 h of the leak start.", "",
                  "| rate kg/day | cases | located within 24 h | latency p50 s |", "|---|---|---|---|"]
        for b in op["by_rate"]:
            loc = b["located_24h"]
            p50 = "-" if b["latency_p50_s"] is None else f"{b['latency_p50_s']:.0f}"
            lines.append(f"| {b['rate_kg_day']} | {b['cases']} | {loc['k']}/{loc['n']} | {p50} |")
    est = ex["estimates_10min"]
    lines += ["", "## Estimates 10 min after sealing", "",
              f"|hole-diameter error| median / p95: {_pair(est['diameter_p50'], est['diameter_p95'], est['diameter_n'])}; "
              f"|reserve-time error| median / p95: {_pair(est['reserve_p50'], est['reserve_p95'], est['reserve_n'])}; "
              f"read from ESTIMATE_UPDATED in {est['from_estimate_updated']} cases, from LEAK_LOCATED in "
              f"{est['from_leak_located']}."]
    se = ex["seals"]
    lines += ["", "## Seals", "",
              f"Nominal cases: {se['nominal']} seals"
              + (f" ({', '.join(se['nominal_cases_with_seal'])})" if se["nominal_cases_with_seal"] else "")
              + f"; leak cases: {se['false_in_leak_cases']} false seals"
              + (f" ({', '.join(se['leak_cases_with_false_seal'])})" if se["leak_cases_with_false_seal"] else "")
              + "."]
    return lines
