"""``hullwatch replay CAPTURE --device URL``: re-emit a capture's packets with their recorded timing."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..captures.replay import MAX_DATAGRAM, open_sink, replay_capture
from .common import (ByteProgress, SkipReporter, add_device_argument, add_progress_argument,
                     check_capture_content, naming)
from ..errors import EXIT_DAMAGED, EXIT_OK
from ..timeparse import duration_arg
from . import SUMMARIES

#: Default of --max-jump, s (hullwatch.tools.replayer.MAX_TIME_JUMP_S; the replayer module is
#: imported by the handler only, to keep `hullwatch --help` light).
MAX_TIME_JUMP_S = 3600.0

EXAMPLES = """\
examples:
  hullwatch replay run.tm --device udp://127.0.0.1:10015            # real time, to a ground station
  hullwatch replay run.tm --device udp://127.0.0.1:10015 --speed 10 # ten times real time
  hullwatch replay run.tm --device /dev/ttyUSB0 --fast              # as fast as the port takes them
  hullwatch replay run.tm --device socket://localhost:7777 --skip-gaps 5 --loop

Packets are sent byte for byte as recorded (one UDP datagram each, or back to back on a serial
port), timed by their CUC time stamps. A packet longer than a UDP datagram (65507 bytes) is sent
over consecutive datagrams; a recorded gap over --max-jump (default 1 h) is a time jump and is
skipped; both with a warning. Damaged stretches of the capture are skipped and reported
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
    """argparse ``type=``: a duration in the one syntax of every verb (``5``, ``90s``, ``2m``), or 0."""
    if text.strip() in ("0", "0.0", "0s"):
        return 0.0
    return float(duration_arg(text))  # type: ignore[arg-type]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help=SUMMARIES["replay"],
        description="Re-emit the packets of a telemetry capture, exactly as recorded, with their "
        "recorded timing (from each packet's CUC time), to udp://HOST:PORT or any pyserial port "
        "URL. Exit status: 0 done, 2 bad input, 3 the capture was damaged (the rest was sent), "
        "4 the destination failed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")
    add_device_argument(p, required=True, aliases=("--to",),
                   help="destination: udp://HOST:PORT, a serial port path, or any pyserial URL (alias: --to)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive, default=1.0, metavar="N",
                      help="N times real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible, no pacing")
    p.add_argument("--skip-gaps", type=_non_negative, default=None, metavar="DURATION",
                   help="shorten recorded gaps longer than DURATION to DURATION (5, 30s, 2m)")
    p.add_argument("--loop", action="store_true", help="start over at the end (until Ctrl-C)")
    p.add_argument("--max-jump", type=_positive, default=MAX_TIME_JUMP_S, metavar="SECONDS",
                   help="a recorded gap longer than SECONDS is a time jump (a corrupt time stamp, "
                   f"captures back to back): skipped with a warning (default {MAX_TIME_JUMP_S:g})")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    path = args.capture
    empty = check_capture_content(path)  # not a capture: InputError, exit 2
    if empty:
        print(f"hullwatch: replay: warning: {empty}", file=sys.stderr)
    skips = SkipReporter(path)
    with naming("--device"):
        sink = open_sink(args.device)
    started = time.perf_counter()
    try:
        with ByteProgress(path, "replay", enabled=not args.no_progress) as bar:
            stats = replay_capture(path, sink, speed=None if args.fast else args.speed,
                                   skip_gaps=args.skip_gaps, loop=args.loop, progress=bar.callback,
                                   on_skip=skips, max_jump=args.max_jump)
    finally:
        sink.close()
    wall = time.perf_counter() - started
    note = ""
    if stats.gaps_skipped:
        note = (f" ({stats.gaps_skipped} gaps longer than {args.skip_gaps:g} s shortened, "
                f"{stats.skipped_s:.1f} s cut)")
    if stats.bad_stamps:
        print(f"hullwatch: warning: {path}: {stats.bad_stamps} packets stamped off the timeline of "
              "the packets around them (corrupt time stamps; the first at byte offset "
              f"{stats.first_bad_offset}) were sent with the packet before, not paced", file=sys.stderr)
    if stats.time_jumps:
        print(f"hullwatch: warning: {path}: {stats.time_jumps} time jumps over {args.max_jump:g} s "
              f"skipped (the first, {stats.first_jump_s:+.6g} s, at the packet at byte offset "
              f"{stats.first_jump_offset})", file=sys.stderr)
    split = getattr(sink, "split", 0)
    if split:
        print(f"hullwatch: warning: {split} packets longer than a UDP datagram ({MAX_DATAGRAM} "
              "bytes) were sent split over consecutive datagrams", file=sys.stderr)
    refused = getattr(sink, "refused", 0)
    if refused:
        note += f"; {refused} datagrams refused (nobody listening)"
    loops = f" in {stats.loops} passes" if stats.loops > 1 else ""
    print(f"replayed {stats.packets} packets ({stats.bytes} bytes){loops} to {args.device}: "
          f"{stats.mission_span_s:.1f} s of recorded time in {wall:.1f} s{note}")
    if skips.finish():
        return EXIT_DAMAGED
    return EXIT_OK


def on_interrupt(args: argparse.Namespace) -> str:
    return f"the packets up to here were sent to {args.device}; {args.capture} is untouched"
