"""``hullwatch plot CAPTURE -o PNG``: pressure, temperature, gas inventory and leak rate per module."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..captures.plot import plot_capture
from .common import ByteProgress, SkipReporter, add_progress_argument, check_capture_content, plot_path_arg
from ..errors import EXIT_DAMAGED, EXIT_OK, InputError
from ..timeparse import time_arg
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch run --scenario soyuz-ms09 --capture ms09.tm && hullwatch plot ms09.tm -o ms09.png
  hullwatch plot ms09.tm -o om.png --modules soyuz-om,soyuz-dm --since 5m --until 2h
  hullwatch plot ms09.tm -o late.png --since 2018-08-29T21:00:00Z

Panels (x axis: mission time since the UTC of mission time 0, given in the label):
  pressure [kPa] (right axis mmHg), gas temperature [K], gas inventory change since the first
  plotted sample [kg of air] (legend: inventory at that sample), estimated leak rate [kg/day, + = loss].
Events are dashed lines with numbered badges, listed under the plot. The data are the 1 Hz
housekeeping packets; long captures are reduced to --max-points bins (mean line, min-max band),
so memory stays bounded. Times (--since/--until): mission time as seconds or with units (600, 90s,
15m, 1h30m, 1d), or ISO UTC. The image format follows the suffix of -o (.png, .pdf, .svg, ...;
checked before anything is read; no suffix: .png is added).
Exit status: 0 written, 2 bad input (a file that is not a capture, an unknown image format),
3 the capture was damaged (the rest was plotted).
"""


def _time_text(text: str) -> str:
    """argparse ``type=``: check the time syntax now, keep the text (a UTC time needs the
    capture's epoch, known only once it is read)."""
    time_arg(text)
    return text


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot",
        help=SUMMARIES["plot"],
        description="Plot a telemetry capture's housekeeping per module over mission time, with "
        "its events marked, into a PNG (or any format matplotlib knows by the suffix).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", type=plot_path_arg,
                   help="image file to write; its suffix picks the format (no suffix: .png)")
    p.add_argument("--modules", metavar="A,B,...", default=None,
                   help="only these modules (names from the capture's layout), comma-separated")
    p.add_argument("--since", metavar="T", default=None, type=_time_text,
                   help="start of the plotted mission time (600, 15m, 1h30m, or ISO UTC)")
    p.add_argument("--until", metavar="T", default=None, type=_time_text, help="end of the plotted mission time")
    p.add_argument("--title", default=None, help="figure title (default: the capture's name)")
    p.add_argument("--max-points", type=int, default=2000, metavar="N",
                   help="time bins per series at most (default 2000)")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    path = args.capture
    empty = check_capture_content(path)  # not a capture: InputError, exit 2
    if empty:  # a warning, not an error: there is nothing wrong with the file, only nothing in it
        print(f"hullwatch: plot: warning: {empty}: nothing to plot, no image written", file=sys.stderr)
        return EXIT_OK
    if args.max_points < 2:
        raise InputError(f"--max-points: expected a number >= 2, got {args.max_points}")
    modules = None
    if args.modules:
        modules = [m.strip() for m in args.modules.split(",") if m.strip()]
        if not modules:
            raise InputError("--modules: expected module names separated by commas")
    skips = SkipReporter(path)
    with ByteProgress(path, "plot", enabled=not args.no_progress) as bar:
        data = plot_capture(path, args.output, modules=modules, since=args.since, until=args.until,
                            max_bins=args.max_points + args.max_points % 2, title=args.title,
                            progress=bar.callback, on_skip=skips)
    t0, t1 = float(data.t[0]), float(data.t[-1])
    print(f"wrote {args.output}: {len(data.modules)} modules, {data.housekeeping} housekeeping samples "
          f"({len(data.t)} points per series), {len(data.events) + data.events_dropped} events, "
          f"mission time {t0:.1f} s .. {t1:.1f} s")
    if data.bad_stamps:
        print(f"hullwatch: warning: {path}: {data.bad_stamps} housekeeping packets with a time stamp "
              "jumping more than 1 h from their neighbours were left out (corrupt time stamps)",
              file=sys.stderr)
    if skips.finish():
        return EXIT_DAMAGED
    return EXIT_OK


def on_interrupt(args: argparse.Namespace) -> str:
    return f"no image written; {args.capture} is untouched"
