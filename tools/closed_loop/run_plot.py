"""``hullwatch run --plot IMAGE``: voted pressure per module over mission time, events marked.

Two panels: the whole run, and a zoom on the events (from a little before the leak start or the
first marked event to a little after the last one), where a 2 h run's few minutes of FDIR decisions
would otherwise be a sliver. Pressure in kPa, with mmHg on the right axis.

The pressures come from the run's capture (1 Hz housekeeping packets; the whole-run panel is
decimated to at most ``max_points`` per module as they stream by, the zoom keeps every sample of its
window, so a day-long run plots in bounded memory); the events and the leak start come from the
:class:`RunResult`. matplotlib is imported only when a plot is made (Agg backend, no pyplot).
"""

from __future__ import annotations

import os
import textwrap

from ...firmware.telemetry.layoutjson import layout_from_json
from ...firmware.telemetry.packets import Housekeeping, LayoutReport
from ..ground.capture import iter_capture
from ..units import MMHG_PA
from .result import RunResult


#: Events drawn as vertical lines, with their colour.
MARKED = {
    "LEAK_SUSPECTED": "tab:orange", "LEAK_CONFIRMED": "tab:red", "RAPID_DEPRESS": "darkred",
    "ISOLATION_STARTED": "tab:purple", "LEAK_LOCATED": "tab:brown", "SEGMENT_SEALED": "black",
    "SENSOR_FAILED": "tab:gray", "VALVE_FAILED": "tab:pink", "ISOLATION_FAILED": "magenta",
}


#: events that set the zoom window (the leak story)
STORY = ("LEAK_SUSPECTED", "LEAK_CONFIRMED", "RAPID_DEPRESS", "ISOLATION_STARTED", "LEAK_LOCATED",
         "SEGMENT_SEALED", "ISOLATION_FAILED")


def read_pressures(capture: str | os.PathLike[str], max_points: int = 4000,
                   window: tuple[float, float] | None = None) -> tuple[list[str], list[float], list[list[float]]]:
    """(module names, mission times s, pressure rows Pa) from a capture's housekeeping packets.

    Keeps every ``stride``-th packet, doubling the stride whenever ``max_points`` are held. With
    ``window`` (mission seconds from, to) only the packets in it are kept, every one of them.
    """
    names: list[str] = []
    epoch = 0.0
    times: list[float] = []
    rows: list[list[float]] = []
    stride = 1
    seen = 0
    for cap in iter_capture(capture):
        data = cap.packet.data
        if isinstance(data, LayoutReport) and not names:
            names = [m.name for m in layout_from_json(data.layout_json).modules]
            epoch = data.epoch_utc
        elif isinstance(data, Housekeeping):
            t = cap.packet.time_utc - epoch
            if window is not None:
                if window[0] <= t <= window[1]:
                    times.append(t)
                    rows.append([m.pressure_pa for m in data.modules])
                elif t > window[1]:
                    break
                continue
            if seen % stride == 0:
                times.append(t)
                rows.append([m.pressure_pa for m in data.modules])
                if len(times) >= max_points:
                    times, rows = times[::2], rows[::2]
                    stride *= 2
            seen += 1
    return names, times, rows


def zoom_window(result: RunResult) -> tuple[float, float] | None:
    """Mission seconds (from, to) around the leak story: the leak start and the FDIR events,
    with a margin of a fifth of their span (at least 30 s); None when there is no story."""
    ts = [lk.start_s for lk in result.leaks if lk.start_s <= result.end_s]
    ts += [e.t for e in result.events if e.name in STORY]
    if not ts:
        return None
    lo, hi = min(ts), max(ts)
    margin = max(30.0, 0.2 * (hi - lo))
    return max(0.0, lo - margin), min(result.end_s, hi + margin)


def _scale(span: float) -> tuple[float, str]:
    return (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 180 else (1.0, "s")


def _panel(ax: object, names: list[str], times: list[float], rows: list[list[float]], result: RunResult,
           lo: float, hi: float, legend: bool) -> None:
    scale, unit = _scale(hi - lo)
    for j, name in enumerate(names):
        ax.plot([t / scale for t in times], [r[j] / 1000.0 for r in rows], lw=1.2, label=name)
    drawn: set[str] = set()
    for ev in result.events:
        colour = MARKED.get(ev.name)
        if colour is None or not lo <= ev.t <= hi:
            continue
        label = ev.name.lower().replace("_", " ") if ev.name not in drawn else None
        drawn.add(ev.name)
        ax.axvline(ev.t / scale, color=colour, lw=1.0, ls="--", alpha=0.8, label=label)
    for lk in result.leaks:
        if lo <= lk.start_s <= hi:
            ax.axvline(lk.start_s / scale, color="tab:red", lw=2.0, alpha=0.3, label=f"leak starts ({lk.module})")
    ax.set_xlim(lo / scale, hi / scale)
    ax.set_xlabel(f"mission time ({unit})")
    ax.set_ylabel("voted pressure (kPa)")
    ax.ticklabel_format(axis="y", useOffset=False)
    sec = ax.secondary_yaxis("right", functions=(lambda k: k * 1000.0 / MMHG_PA, lambda m: m * MMHG_PA / 1000.0))
    sec.set_ylabel("(mmHg)")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="best", ncol=2)


def plot_run(result: RunResult, capture: str | os.PathLike[str], out: str | os.PathLike[str],
             dpi: int = 110) -> None:
    """Write an image (format by the suffix of ``out``) of pressure per module with the run's
    events marked: the whole run on top, a zoom on the events below (when there are any).

    Raises OSError if the image cannot be written.
    """
    import matplotlib  # deferred: matplotlib costs ~0.3 s to import; only --plot needs it

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # deferred as above; no pyplot: no global state, no GUI backend

    names, times, rows = read_pressures(capture)
    window = zoom_window(result)
    end = max(result.end_s, times[-1] if times else 0.0)
    fig = Figure(figsize=(11, 8.5 if window else 5.5))
    axes = fig.subplots(2, 1) if window else [fig.subplots()]
    _panel(axes[0], names, times, rows, result, 0.0, max(end, 1.0), legend=window is None)
    axes[0].set_title("whole run" if window else "", fontsize=9, loc="left")
    if window:
        znames, ztimes, zrows = read_pressures(capture, window=window)
        _panel(axes[1], znames, ztimes, zrows, result, window[0], window[1], legend=True)
        axes[1].set_title("zoom on the events", fontsize=9, loc="left")
        axes[0].axvspan(window[0] / _scale(end)[0], window[1] / _scale(end)[0], color="0.85", alpha=0.5)
    fig.suptitle(textwrap.fill(f"{result.scenario or result.device}: {result.verdict}", 130), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
