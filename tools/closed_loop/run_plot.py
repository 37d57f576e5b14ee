"""``hullwatch run --plot PNG``: voted pressure per module over mission time, events marked.

The pressures come from the run's capture (1 Hz housekeeping packets, decimated to at most
``max_points`` per module as they stream by, so a day-long run plots in bounded memory); the events
and the leak start come from the :class:`RunResult`. matplotlib is imported only when a plot is
made (Agg backend: no display needed).
"""

from __future__ import annotations

import os
from ..ground.capture import iter_capture
from ...firmware.telemetry.layoutjson import layout_from_json
from ...firmware.telemetry.packets import Housekeeping, LayoutReport
from .runner import RunResult

MMHG_PA = 133.322387415

#: Events drawn as vertical lines, with their colour.
MARKED = {
    "LEAK_SUSPECTED": "tab:orange", "LEAK_CONFIRMED": "tab:red", "RAPID_DEPRESS": "darkred",
    "ISOLATION_STARTED": "tab:purple", "LEAK_LOCATED": "tab:brown", "SEGMENT_SEALED": "black",
    "SENSOR_FAILED": "tab:gray", "VALVE_FAILED": "tab:pink", "ISOLATION_FAILED": "magenta",
}


def read_pressures(capture: str | os.PathLike[str], max_points: int = 4000) -> tuple[list[str], list[float], list[list[float]]]:
    """(module names, mission times s, pressure rows Pa) from a capture's housekeeping packets.

    Keeps every ``stride``-th packet, doubling the stride whenever ``max_points`` are held.
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
            if seen % stride == 0:
                times.append(cap.packet.time_utc - epoch)
                rows.append([m.pressure_pa for m in data.modules])
                if len(times) >= max_points:
                    times, rows = times[::2], rows[::2]
                    stride *= 2
            seen += 1
    return names, times, rows


def plot_run(result: RunResult, capture: str | os.PathLike[str], out: str | os.PathLike[str],
             dpi: int = 110) -> None:
    """Write a PNG of pressure per module with the run's events marked.

    Raises OSError if the PNG cannot be written.
    """
    import matplotlib  # deferred: matplotlib costs ~0.3 s to import; only --plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred as above, after choosing the Agg backend

    names, times, rows = read_pressures(capture)
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    scale, unit = (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 180 else (1.0, "s")
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for j, name in enumerate(names):
        ax.plot([t / scale for t in times], [r[j] / MMHG_PA for r in rows], lw=1.2, label=name)
    drawn: set[str] = set()
    for ev in result.events:
        colour = MARKED.get(ev.name)
        if colour is None:
            continue
        label = ev.name.lower().replace("_", " ") if ev.name not in drawn else None
        drawn.add(ev.name)
        ax.axvline(ev.t / scale, color=colour, lw=1.0, ls="--", alpha=0.8, label=label)
    for lk in result.leaks:
        ax.axvline(lk.start_s / scale, color="tab:red", lw=2.0, alpha=0.3,
                   label=f"leak starts ({lk.module})")
    ax.set_xlabel(f"mission time ({unit})")
    ax.set_ylabel("voted pressure (mmHg)")
    title = f"{result.scenario or result.device}: {result.verdict}"
    ax.set_title(title if len(title) < 110 else title[:107] + "...", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)

