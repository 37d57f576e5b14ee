"""``hullwatch replay CAPTURE --to URL``: re-emit a capture's packets with their recorded timing."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import ByteProgress, SkipReporter, add_progress_argument, check_capture_path
from ..errors import EXIT_DAMAGED, EXIT_OK

EXAMPLES = """\
examples:
  hullwatch replay run.tm --to udp://127.0.0.1:10015            # real time, to a ground station
  hullwatch replay run.tm --to udp://127.0.0.1:10015 --speed 10 # ten times real time
  hullwatch replay run.tm --to /dev/ttyUSB0 --fast              # as fast as the port takes them
  hullwatch replay run.tm --to socket://localhost:7777 --skip-gaps 5 --loop

Packets are sent byte for byte as recorded (one UDP datagram each, or back to back on a serial
port), timed by their CUC time stamps. Damaged stretches of the capture are skipped and reported
on stderr; the exit status is then 3.
"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="re-emit a capture's packets with their recorded timing to UDP or a serial port",
        description="Re-emit the packets of a telemetry capture, exactly as recorded, with their "
        "recorded timing (from each packet's CUC time), to udp://HOST:PORT or any pyserial port "
        "URL. Exit status: 0 done, 2 bad input, 3 the capture was damaged (the rest was sent), "
        "4 the destination failed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")
    p.add_argument("--to", required=True, metavar="URL",
                   help="destination: udp://HOST:PORT, a serial port path, or any pyserial URL")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive, default=1.0, metavar="N",
                      help="N times real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible, no pacing")
    p.add_argument("--skip-gaps", type=_non_negative, default=None, metavar="SECONDS",
                   help="shorten recorded gaps longer than SECONDS to SECONDS")
    p.add_argument("--loop", action="store_true", help="start over at the end (until Ctrl-C)")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..captures.replay import open_sink, replay_capture

    path = args.capture
    check_capture_path(path)
    skips = SkipReporter(path)
    sink = open_sink(args.to)
    started = time.perf_counter()
    try:
        with ByteProgress(path, "replay", enabled=not args.no_progress) as bar:
            stats = replay_capture(path, sink, speed=None if args.fast else args.speed,
                                   skip_gaps=args.skip_gaps, loop=args.loop, progress=bar.callback,
                                   on_skip=skips)
    finally:
        sink.close()
    wall = time.perf_counter() - started
    note = ""
    if stats.gaps_skipped:
        note = (f" ({stats.gaps_skipped} gaps longer than {args.skip_gaps:g} s shortened, "
                f"{stats.skipped_s:.1f} s cut)")
    refused = getattr(sink, "refused", 0)
    if refused:
        note += f"; {refused} datagrams refused (nobody listening)"
    loops = f" in {stats.loops} passes" if stats.loops > 1 else ""
    print(f"replayed {stats.packets} packets ({stats.bytes} bytes){loops} to {args.to}: "
          f"{stats.mission_span_s:.1f} s of recorded time in {wall:.1f} s{note}")
    if skips.finish():
        return EXIT_DAMAGED
    return EXIT_OK
