"""``hullwatch plot CAPTURE -o PNG``: pressure, temperature, gas inventory and leak rate per module."""

from __future__ import annotations

import argparse
from typing import Any

from .common import ByteProgress, SkipReporter, add_progress_argument, check_capture_path
from ..errors import EXIT_DAMAGED, EXIT_OK, InputError

EXAMPLES = """\
examples:
  hullwatch run soyuz-ms09 --capture ms09.tm && hullwatch plot ms09.tm -o ms09.png
  hullwatch plot ms09.tm -o om.png --modules soyuz-om,soyuz-dm --since 5m --until 2h
  hullwatch plot ms09.tm -o late.png --since 2018-08-29T21:00:00Z

Panels (x axis: mission time since the UTC of mission time 0, given in the label):
  pressure [kPa] (right axis mmHg), gas temperature [K], gas inventory change since the first
  plotted sample [mol] (legend: inventory at that sample), estimated leak rate [kg/h, + = loss].
Events are dashed lines with numbered badges, listed under the plot. The data are the 1 Hz
housekeeping packets; long captures are reduced to --max-points bins (mean line, min-max band),
so memory stays bounded. Times (--since/--until): mission seconds, 90s/15m/2h/1d, or ISO UTC.
Exit status: 0 written, 2 bad input, 3 the capture was damaged (the rest was plotted).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot",
        help="plot pressure, temperature, inventory and leak rate per module from a capture",
        description="Plot a telemetry capture's housekeeping per module over mission time, with "
        "its events marked, into a PNG (or any format matplotlib knows by the suffix).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="image file to write")
    p.add_argument("--modules", metavar="A,B,...", default=None,
                   help="only these modules (names from the capture's layout), comma-separated")
    p.add_argument("--since", metavar="T", default=None, help="start of the plotted mission time")
    p.add_argument("--until", metavar="T", default=None, help="end of the plotted mission time")
    p.add_argument("--title", default=None, help="figure title (default: the capture's name)")
    p.add_argument("--max-points", type=int, default=2000, metavar="N",
                   help="time bins per series at most (default 2000)")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..captures.plot import parse_time, plot_capture

    path = args.capture
    check_capture_path(path)
    if args.max_points < 2:
        raise InputError(f"--max-points: expected a number >= 2, got {args.max_points}")
    modules = None
    if args.modules:
        modules = [m.strip() for m in args.modules.split(",") if m.strip()]
        if not modules:
            raise InputError("--modules: expected module names separated by commas")
    for name in ("since", "until"):
        value = getattr(args, name)
        if value is not None and "T" not in value:
            parse_time(value)  # fail early on a typo; UTC times are checked against the epoch later
    skips = SkipReporter(path)
    with ByteProgress(path, "plot", enabled=not args.no_progress) as bar:
        data = plot_capture(path, args.output, modules=modules, since=args.since, until=args.until,
                            max_bins=args.max_points + args.max_points % 2, title=args.title,
                            progress=bar.callback, on_skip=skips)
    t0, t1 = float(data.t[0]), float(data.t[-1])
    print(f"wrote {args.output}: {len(data.modules)} modules, {data.housekeeping} housekeeping samples "
          f"({len(data.t)} points per series), {len(data.events) + data.events_dropped} events, "
          f"mission time {t0:.1f} s .. {t1:.1f} s")
    if skips.finish():
        return EXIT_DAMAGED
    return EXIT_OK
