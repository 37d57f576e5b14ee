"""``hullwatch rerun CAPTURE``: re-run the flight software on recorded samples, diff the events."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..captures.rerun import format_diff, rerun_capture
from .common import (SkipReporter, add_progress_argument, check_capture_content, file_kept_text, output_path,
                     progress_bar)
from ..errors import EXIT_DAMAGED, EXIT_OK, EXIT_VERDICT, InputError
from ..units import plural
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch run --scenario soyuz-ms09 --capture ms09.tm
  hullwatch rerun ms09.tm                        # same parameters: no difference, exit 0
  hullwatch rerun ms09.tm --fdir tuned.toml      # what the tuned table would have done
  hullwatch rerun ms09.tm --mode passive
  hullwatch rerun ms09.tm --fdir tuned.toml --capture tuned.tm && hullwatch plot tuned.tm -o tuned.png

Output: one line per difference, in mission-time order:
  - TIME  EVENT  SUBJECT  field value, ...   recorded only   the re-run did not raise it
  + TIME  EVENT  SUBJECT  field value, ...   rerun only      new in the re-run
  ~ TIME  EVENT  SUBJECT  field: recorded -> re-run, per changed value
Values are labelled with their field names and shown in display units (kPa, kg/day, h min, mm;
the field names are those of hullwatch dictionary).
Events match when name and subject agree and their mission times are within --tolerance.
Host events (CYCLE_OVERRUN, LINK_LOST, LINK_RESTORED, CONFIG_LOADED) depend on the machine, not
on the samples, and are not compared unless --all-events.

Exit status: 0 no difference; 1 differences listed; 2 bad input (capture without layout report
or raw samples, bad parameter file); 3 the capture was damaged (skipped ranges on stderr) and no
difference was found.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rerun",
        help=SUMMARIES["rerun"],
        description="Run the flight software on the sensor samples and valve states recorded in a "
        "capture (through the replay:// device), with the recorded or other FDIR parameters, and "
        "compare the events it raises with the recorded event packets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm) with raw samples")
    p.add_argument("--fdir", metavar="PARAMS.toml", default=None,
                   help="FDIR parameter table for the re-run (default: the built-in defaults)")
    p.add_argument("--mode", choices=("active", "passive", "off"), default=None,
                   help="FDIR mode for the re-run (default: the mode recorded in the capture)")
    p.add_argument("--capture", dest="rerun_capture", metavar="FILE", default=None,
                   help="also write the re-run's telemetry to this capture (to plot or decode it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --capture FILE")
    p.add_argument("--all-events", action="store_true",
                   help="also compare host events (cycle overruns, link, config loads)")
    p.add_argument("--tolerance", type=float, default=1e-3, metavar="SECONDS",
                   help="largest mission-time difference of a matching event (default 0.001)")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    path = args.capture
    empty = check_capture_content(path)  # not a capture: InputError, exit 2
    if empty:  # a warning, not an error: nothing recorded, nothing to compare
        print(f"hullwatch: rerun: warning: {empty}: nothing to re-run", file=sys.stderr)
        return EXIT_OK
    if args.fdir is not None and not os.path.isfile(args.fdir):
        raise InputError(f"--fdir {args.fdir}: no such parameter file")
    if args.rerun_capture and os.path.exists(args.rerun_capture) and os.path.samefile(args.rerun_capture, path):
        raise InputError(f"--capture {args.rerun_capture}: is the capture being re-run; choose another file")
    if args.rerun_capture:
        output_path(args.rerun_capture, args.rerun_capture, args.force)  # never overwritten silently
    if not args.tolerance >= 0:
        raise InputError(f"--tolerance: expected seconds >= 0, got {args.tolerance}")
    skips = SkipReporter(path)

    bar = None
    progress = None
    if sys.stderr.isatty() and not args.no_progress:
        bar = progress_bar(total=1.0, unit="s", desc="rerun", leave=False,
                           bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s mission time [{elapsed}<{remaining}]")

        def progress(done: float, total: float) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        report = rerun_capture(path, fdir_params=args.fdir, mode=args.mode, compare_all=args.all_events,
                               time_tolerance_s=args.tolerance, on_skip=skips, progress=progress,
                               capture=args.rerun_capture)
    finally:
        if bar is not None:
            bar.close()
    if report.time_jumps:
        print(f"hullwatch: warning: {path}: {report.time_jumps} raw samples with a corrupt time "
              "stamp (off the timeline of their cycle counters) were placed by their cycle "
              "counter", file=sys.stderr)
    if report.timeline_ends:
        print(f"hullwatch: warning: {path}: another recording follows at mission time "
              f"{report.end_time:.1f} s (a new timeline); only the first was re-run", file=sys.stderr)
    if report.layout_changes:
        print(f"hullwatch: warning: {path}: {report.layout_changes} layout reports differ from the "
              "first; the re-run used the first", file=sys.stderr)
    params = args.fdir or "default parameters"
    print(f"rerun of {path}: {report.cycles} cycles, mission time {report.start_time:.1f} s .. "
          f"{report.end_time:.1f} s, {params}, mode {report.mode}")
    ignored = f" ({report.ignored} host events not compared)" if report.ignored else ""
    print(f"events: {report.recorded} recorded, {report.rerun} in the re-run{ignored}")
    if report.commands:
        print(f"telecommands: {report.commands} recorded, applied again at their recorded cycles")
    if report.identical:
        print("no difference: the re-run raised the same events at the same mission times")
    else:
        print(f"{plural(len(report.diffs), 'difference')} (- recorded only, + rerun only, ~ changed values):")
        for line in format_diff(report):
            print(line)
    if args.rerun_capture:
        print(f"re-run telemetry: {file_kept_text(args.rerun_capture)}")
    damaged = skips.finish()
    if not report.identical:
        return EXIT_VERDICT
    return EXIT_DAMAGED if damaged else EXIT_OK


def on_interrupt(args: argparse.Namespace) -> str:
    kept = f"; re-run telemetry {file_kept_text(args.rerun_capture)} kept, every packet in it whole" \
        if args.rerun_capture and os.path.exists(args.rerun_capture) else ""
    return f"no comparison made; {args.capture} is untouched{kept}"
