"""``hullwatch monitor``: a live web page of telemetry from UDP or a capture."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import EXIT_DAMAGED, EXIT_OK, InputError
from ..monitor import DEFAULT_HTTP, open_monitor
from .common import SkipReporter, check_capture_path, wait_for_interrupt
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch monitor --tm udp://127.0.0.1:10025                 follow `hullwatch run --tm` or `replay --to`
  hullwatch monitor --tm udp://0.0.0.0:10025 --http 0.0.0.0:8025   reachable from other machines
  hullwatch monitor --tm udp://127.0.0.1:10025 --tc udp://127.0.0.1:10024   with commanding (run --tc)
  hullwatch monitor soyuz-ms09-seed7.tm                         show a capture
  hullwatch monitor run.tm --follow                             follow a capture while it grows
  hullwatch run --realtime --monitor                            a page beside a run (see hullwatch run)

The page is at http://127.0.0.1:8025/ unless --http says otherwise (port 0: any free port); the
URL is printed on start. It loads nothing from the internet. /api/state serves the same state as
JSON. Runs until Ctrl-C. Exit status: 0, 2 bad input (address, missing capture), 3 the capture
was damaged (the rest was shown).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "monitor",
        help=SUMMARIES["monitor"],
        description="Serve a live web page of the station as telemetry arrives: the station "
        "diagram with each module's state, plots of pressure, inventory, leak rate, test "
        "statistic and temperature over a chosen window, the event log, FDIR, sensor, valve "
        "and link-health panels, and /api/state as JSON. Telemetry comes from UDP (hullwatch "
        "run --tm, hullwatch replay --to) or from a capture file. With --tc (the flight software's "
        "telecommand link) the page can also acknowledge alarms and set the FDIR mode, and shows "
        "each command's verification reports.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", nargs="?", default=None,
                   help="telemetry capture file (.tm) to show (instead of --tm)")
    p.add_argument("--tm", metavar="udp://HOST:PORT", default=None,
                   help="receive telemetry datagrams on this address")
    p.add_argument("--follow", action="store_true",
                   help="with CAPTURE: keep reading what is appended to it")
    p.add_argument("--tc", metavar="udp://HOST:PORT", default=None,
                   help="the flight software's telecommand link (its run --tc): the page can then "
                   "acknowledge alarms and set the FDIR mode, and shows each command's reports")
    p.add_argument("--http", metavar="HOST:PORT", default=None,
                   help="address of the page (default 127.0.0.1:8025: this machine only)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if (args.capture is None) == (args.tm is None):
        raise InputError("monitor: give a CAPTURE file or --tm udp://HOST:PORT (one of them)")
    if args.follow and args.capture is None:
        raise InputError("monitor: --follow goes with a CAPTURE file")
    skips = None
    if args.capture is not None:
        check_capture_path(args.capture)
        skips = SkipReporter(args.capture)
    monitor = open_monitor(args.http or DEFAULT_HTTP, tm=args.tm, capture=args.capture, follow=args.follow,
                           on_skip=skips, tc=args.tc)
    if args.tm:
        host, port = monitor.source.address  # type: ignore[union-attr] - a UDP source: the bound address
        what = f"udp://{host}:{port}"
    else:
        what = args.capture + (" (following)" if args.follow else "")
    if args.tc:
        what += f", commanding {monitor.state.commander.url}"  # type: ignore[union-attr]
    print(f"hullwatch monitor: {monitor.url} showing {what}; Ctrl-C to stop", flush=True)
    try:
        wait_for_interrupt()
    finally:
        monitor.close()
    if skips is not None and skips.finish():
        return EXIT_DAMAGED
    return EXIT_OK
