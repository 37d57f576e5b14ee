"""Drawing a capture's plot (:class:`~hullwatch.tools.captures.plot.PlotData`) with matplotlib:
four panels sharing the mission-time axis, events as numbered badges listed under the plot.

matplotlib (Agg backend) is imported on first use, so that importing the captures package, and the
command line that registers every verb, costs nothing of it.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..units import AIR_KG_MOL, DAY_S, MMHG_PA

#: mmHg per Pa (1 mmHg = 133.322 387 415 Pa)
MMHG_PER_PA = 1.0 / MMHG_PA
KG_DAY_PER_KG_S = DAY_S


def _time_scale(span_s: float) -> tuple[float, str]:
    if span_s > 3 * 86400:
        return 86400.0, "d"
    if span_s > 3 * 3600:
        return 3600.0, "h"
    if span_s > 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


_SEVERITY_COLOURS = {1: "tab:gray", 2: "tab:olive", 3: "tab:orange", 4: "tab:red"}
_SEVERITY_NAMES = {1: "info", 2: "low", 3: "medium", 4: "high"}


def render(data: Any, out: str | os.PathLike[str], *, title: str | None = None, dpi: int = 110) -> None:
    """Draw ``data`` (a :class:`~hullwatch.tools.captures.plot.PlotData`) into a PNG (or any format
    matplotlib infers from the suffix) at ``out``.

    Four panels sharing the time axis; events as numbered dashed lines listed under the plot.
    Raises OSError when ``out`` cannot be written.
    """
    import matplotlib  # deferred: matplotlib costs ~0.3 s to import; only drawing needs it

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # deferred as above; no pyplot: no global state, no GUI backend

    scale, unit = _time_scale(float(data.t[-1] - min(data.t[0], 0.0)) if len(data.t) else 0.0)
    x = data.t / scale
    start = datetime.fromtimestamp(data.epoch_utc, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = [e for e in data.events]
    n_list_rows = math.ceil(len(shown) / 2) if shown else 0
    badge_rows = max(1, min(4, math.ceil(len(shown) * 0.021 / 0.8))) if shown else 0
    fig_h = 10.5 + 0.19 * n_list_rows + 0.2 * badge_rows
    fig = Figure(figsize=(13, fig_h))
    list_frac = (0.5 + 0.19 * n_list_rows) / fig_h if shown else 0.04
    gs = fig.add_gridspec(4, 1, left=0.08, right=0.80, top=1 - (0.95 + 0.2 * badge_rows) / fig_h, bottom=list_frac + 0.55 / fig_h,
                          hspace=0.12)
    axes = [fig.add_subplot(gs[i]) for i in range(4)]
    for ax in axes[1:]:
        ax.sharex(axes[0])
    colours = matplotlib.colormaps["tab10"].colors
    panels = (
        ("pressure_pa", 1e-3, "pressure [kPa]"),
        ("temperature_k", 1.0, "gas temperature [K]"),
        ("inventory_mol", AIR_KG_MOL, "gas inventory change\nsince first sample [kg]"),
        ("leak_rate_kg_s", KG_DAY_PER_KG_S, "estimated leak rate\n[kg/day, + = loss]"),
    )
    handles = []
    for ax, (key, factor, label) in zip(axes, panels):
        mean, lo, hi = data.mean[key], data.lo[key], data.hi[key]
        for j, name in enumerate(data.modules):
            colour = colours[j % len(colours)]
            base = 0.0
            legend = name
            if key == "inventory_mol":
                finite = mean[:, j][np.isfinite(mean[:, j])]
                base = float(finite[0]) if len(finite) else 0.0
                legend = f"{name} ({base * AIR_KG_MOL:,.1f} kg)"
            (line,) = ax.plot(x, (mean[:, j] - base) * factor, color=colour, lw=1.1, label=legend)
            if data.bin_width_s > 1.0:
                ax.fill_between(x, (lo[:, j] - base) * factor, (hi[:, j] - base) * factor,
                                color=colour, alpha=0.18, lw=0)
            if key == "pressure_pa":
                handles.append(line)
            if key == "inventory_mol":
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                          title="inventory at start", title_fontsize=8)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)
        if key == "pressure_pa":
            sec = ax.secondary_yaxis("right", functions=(lambda kpa: kpa * 1e3 * MMHG_PER_PA,
                                                         lambda mm: mm / MMHG_PER_PA * 1e-3))
            sec.set_ylabel("[mmHg]", fontsize=9)
        if key == "leak_rate_kg_s":
            ax.axhline(0.0, color="black", lw=0.6, alpha=0.5)
            _robust_ylim(ax, mean * factor)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=9,
                   frameon=False, title="module", title_fontsize=9)
    axes[-1].set_xlabel(f"mission time [{unit}] since {start}")
    # Events: a dashed line through every panel and a numbered badge above the top panel. Badges
    # are packed left to right in up to 4 rows so that none overlaps another; a thin leader line
    # joins a badge pushed sideways to its event's line.
    if shown:
        lo_x, hi_x = float(np.nanmin(x)), float(np.nanmax(x))
        for e in shown:
            lo_x, hi_x = min(lo_x, e.t / scale), max(hi_x, e.t / scale)
        span = (hi_x - lo_x) or 1.0
        pad = 0.01 * span
        for ax in axes:
            ax.set_xlim(lo_x - pad, hi_x + pad)
        fracs = [(e.t / scale - lo_x + pad) / (span + 2 * pad) for e in shown]
        for i, e in enumerate(shown):
            colour = _SEVERITY_COLOURS.get(e.severity, "black")
            for ax in axes:
                ax.axvline(e.t / scale, color=colour, ls="--", lw=0.8, alpha=0.8)
        for i, (bx, row) in enumerate(pack_badges(fracs, width=0.021 if len(shown) < 100 else 0.027)):
            e = shown[i]
            colour = _SEVERITY_COLOURS.get(e.severity, "black")
            axes[0].annotate(str(i + 1), xy=(fracs[i], 1.0), xycoords="axes fraction",
                             xytext=(bx, 1.05 + 0.085 * row), textcoords="axes fraction", ha="center",
                             va="bottom", fontsize=7.5, color="white",
                             bbox=dict(boxstyle="round,pad=0.2", fc=colour, ec="none"),
                             arrowprops=dict(arrowstyle="-", color=colour, lw=0.6, shrinkA=0, shrinkB=0),
                             annotation_clip=False)
        lines = []
        for i, e in enumerate(shown, start=1):
            when = _fmt_time(e.t)
            lines.append(f"{i:>3}  {when:>10}  {e.name:<18} {e.subject:<16} "
                         f"({_SEVERITY_NAMES.get(e.severity, '?')})")
        if data.events_dropped:
            lines.append(f"     ... and {data.events_dropped} more events not shown")
        half = math.ceil(len(lines) / 2)
        y0 = list_frac - 0.25 / fig_h
        fig.text(0.02, y0, "events (mission time h:mm:ss, name, subject, severity; colour: grey info, "
                 "olive low, orange medium, red high):", fontsize=9, va="top", weight="bold")
        for col, chunk in enumerate((lines[:half], lines[half:])):
            if chunk:
                fig.text(0.02 + 0.48 * col, y0 - 0.22 / fig_h, "\n".join(chunk), fontsize=8,
                         family="monospace", va="top")
    head = title or f"{data.source}: housekeeping per module"
    span_note = "" if data.bin_width_s <= 1.0 else f"; shaded: min-max per {data.bin_width_s:g} s bin"
    fig.suptitle(f"{head}\nstart (mission time 0) {start}; {data.housekeeping} housekeeping samples"
                 f"{span_note}", fontsize=11, y=1 - 0.15 / fig_h, va="top")
    fig.savefig(os.fspath(out), dpi=dpi)


def _robust_ylim(ax: Any, values: np.ndarray) -> None:
    """Leak-rate estimates spike for a few seconds when valves move; scale the axis to the 1st-99th
    percentile (and zero) so the steady rates stay readable, and say when spikes are cut off."""
    v = values[np.isfinite(values)]
    if v.size < 20:
        return
    lo, hi = np.percentile(v, [1.0, 99.0])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    margin = 0.15 * ((hi - lo) or 1.0)
    lo, hi = lo - margin, hi + margin
    if v.min() < lo or v.max() > hi:
        ax.set_ylim(lo, hi)
        ax.text(0.995, 0.97, "transient spikes clipped", transform=ax.transAxes, ha="right", va="top",
                fontsize=7, color="0.35")


def pack_badges(fracs: list[float], width: float, max_rows: int = 4) -> list[tuple[float, int]]:
    """Badge centres (axes fraction) and rows for events at ``fracs`` (sorted by time), so that
    badges ``width`` wide never overlap: each goes to the row where it moves least, pushed right
    of the previous badge of that row; a row running past the right edge is pushed back left."""
    n = len(fracs)
    rows = max(1, min(max_rows, math.ceil(n * width / 0.8)))
    last = [-math.inf] * rows
    out: list[list[float]] = []
    for f in fracs:
        best = min(range(rows), key=lambda r: (max(f, last[r] + width) - f, r))
        pos = max(f, last[best] + width)
        last[best] = pos
        out.append([pos, best])
    for r in range(rows):
        limit = 1.0
        for item in reversed([o for o in out if o[1] == r]):
            item[0] = min(item[0], limit)
            limit = item[0] - width
    return [(p, int(r)) for p, r in out]


def _fmt_time(t: float) -> str:
    sign = "-" if t < 0 else ""
    t = abs(t)
    h, rem = divmod(t, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{sign}{int(h)}:{int(m):02d}:{s:04.1f}"
