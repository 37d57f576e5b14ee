"""``hullwatch run``: the flight software in closed loop on a simulated station or a board."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from urllib.parse import urlsplit

from ...firmware.fdir.params import default_params, load_params
from ...firmware.types import FdirMode
from ...hal import open as open_device
from ...sim.scenario import load_scenario
from .. import timeparse
from ..closed_loop.runner import RunInterrupted, default_capture_name, open_run_device, run_scenario
from ..closed_loop.timeline import Timeline
from ..commanding.console import CommandConsole
from ..commanding.sequence import load_sequence
from ..errors import EXIT_DEVICE, EXIT_OK, EXIT_VERDICT, InputError
from ..timeparse import duration_arg
from ..units import hours_minutes, size_text
from .common import (add_device_argument, add_progress_argument, file_kept_text, naming, output_path,
                     plot_path_arg, progress_bar, wait_for_interrupt)
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch run                                 soyuz-ms09 on the simulated station, timeline + verdict
  hullwatch run --scenario nominal-24h --quiet  a quiet day: must raise no leak event
  hullwatch run --scenario prk-slow --until 2h --plot prk.png
  hullwatch run --scenario soyuz-ms09 --seed 3 --capture my.tm --force
  hullwatch run --scenario valve-fault --no-capture
  hullwatch run --mode passive                  detect and report only, command no valve
  hullwatch run --fdir my-params.toml           another FDIR parameter table (see docs/fdir.md)
  hullwatch run --realtime --tm udp://127.0.0.1:10025   real time, telemetry to a ground system
  hullwatch run --realtime --monitor            real time, with the live page at http://127.0.0.1:8025/
  hullwatch run --device serial:///dev/ttyACM0 --scenario soyuz-ms09   hardware in the loop
  hullwatch run --realtime --tc udp://127.0.0.1:10024 --tm udp://127.0.0.1:10025   commandable
  hullwatch run --commands close-hatch.toml     a stored, time-tagged command sequence

The capture defaults to <scenario>-seed<N>.tm in the current directory; when that file exists the
next free name is taken (<scenario>-seed<N>-2.tm, ...). A --capture FILE that exists is refused
unless --force. The capture's path and size are printed at the end, with --quiet too. --until
past the end of the scenario stops at the scenario's end (a note says so). On a terminal a
progress bar shows the mission time (stderr; --no-progress hides it). Ctrl-C stops the run,
prints the mission time reached and the capture kept (every packet in it whole), exit 130.
Exit status: 0 when the verdict is right (or there is no truth to judge by, or the run ended
before the scenario's leak began), 1 when FDIR missed, mislocated or raised a false alarm, 2 for
bad input (scenario, parameters, arguments), 4 for a device problem (including a device link
lost and not restored by the end of the run: the verdict, prefixed "STALE DATA", was made on
stale data).
"""


def parse_duration(text: str) -> float:
    """``3600``, ``90s``, ``90m``, ``2h``, ``1h30m``, ``1d`` -> seconds (> 0); the one duration
    syntax (:mod:`hullwatch.tools.timeparse`). Raises InputError naming ``--until``."""
    return timeparse.parse_duration(text, "--until")


def _tm_url(text: str) -> tuple[str, int]:
    """argparse ``type=`` for ``--tm``: ``udp://HOST:PORT`` with a host that resolves."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or not parts.hostname or not port:
        raise argparse.ArgumentTypeError(f"{text!r}: expected udp://HOST:PORT, e.g. udp://127.0.0.1:10025")
    try:
        socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: cannot resolve host {parts.hostname!r} "
                                         f"({getattr(exc, 'strerror', None) or exc})") from None
    return text  # type: ignore[return-value]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help=SUMMARIES["run"],
        description="Run the flight software (executive, FDIR, telemetry) against a simulated "
        "station or a USB sensor board, print the timeline of what FDIR saw and did, end with a "
        "one-line verdict and write a telemetry capture.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", metavar="NAME|PATH", default=None,
                   help="scenario preset or TOML file (default: soyuz-ms09 on sim://)")
    add_device_argument(p, default="sim://",
                        help="device URL: sim:// (default), serial:///dev/ttyACM0 or any pyserial URL "
                        "(with --scenario: hardware in the loop), replay://CAPTURE (alias: --port)")
    p.add_argument("--until", metavar="DURATION", default=None, type=duration_arg,
                   help="mission time to stop at: 3600, 90m, 2h, 1h30m... (default and most: the scenario's duration)")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: the scenario's)")
    cap = p.add_mutually_exclusive_group()
    cap.add_argument("--capture", metavar="FILE", default=None,
                     help="capture file (default: <scenario>-seed<N>.tm, or the next free numbered name)")
    cap.add_argument("--no-capture", action="store_true", help="write no capture")
    p.add_argument("--force", action="store_true", help="overwrite an existing --capture FILE")
    p.add_argument("--plot", metavar="IMAGE", default=None, type=plot_path_arg,
                   help="write a plot of the run (.png, .pdf, .svg...): the whole run, and a zoom on the events")
    p.add_argument("--fdir", metavar="PARAMS.toml", default=None,
                   help="FDIR parameter table laid over the defaults (docs/fdir.md)")
    p.add_argument("--mode", choices=("active", "passive", "off"), default="active",
                   help="FDIR mode: active (isolates), passive (detects and reports), off")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="run in real time (wall clock)")
    pace.add_argument("--speed", type=float, metavar="N", default=None,
                      help="run on a wall clock N times faster than real time")
    p.add_argument("--tm", metavar="udp://HOST:PORT", default=None, type=_tm_url, help="also send telemetry over UDP")
    p.add_argument("--tc", metavar="udp://HOST:PORT", nargs="?", const="udp://127.0.0.1:10024", default=None,
                   help="receive telecommands over UDP (alone: udp://127.0.0.1:10024; udp://:PORT listens "
                   "on 127.0.0.1); see docs/commanding.md")
    p.add_argument("--commands", metavar="FILE.toml", default=None,
                   help="stored sequence of time-tagged commands ([[commands]] at_s, command, ...)")
    p.add_argument("--monitor", metavar="HOST:PORT", nargs="?", const="127.0.0.1:8025", default=None,
                   help="serve the live monitor page beside the run (default 127.0.0.1:8025; it stays "
                   "up after the run until Ctrl-C; with --tc the page can command the run); see "
                   "hullwatch monitor")
    p.add_argument("--quiet", action="store_true", help="print only the verdict and the capture")
    p.add_argument("--verbose", action="store_true", help="also show cycle overrun events and every estimate update after sealing")
    add_progress_argument(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    until = args.until
    if args.speed is not None and not args.speed > 0:
        raise InputError(f"--speed {args.speed:g}: expected a number > 0")
    with naming("--fdir"):
        params = load_params(args.fdir) if args.fdir else None  # bad table: ParameterError, exit 2
    if args.plot and args.no_capture:
        raise InputError("--plot needs the run's capture (the pressures come from it); drop --no-capture")
    if args.capture is not None:
        output_path(args.capture, args.capture, args.force)  # refuse an existing file before the run
    device_url = args.device
    scenario = args.scenario
    is_sim = device_url.lower().startswith("sim://")
    if is_sim:
        target = device_url[len("sim://"):].partition("?")[0]
        if scenario is None and not target:
            scenario = "soyuz-ms09"
    if isinstance(scenario, str):
        with naming("--scenario"):
            load_scenario(scenario)  # a missing or malformed scenario is about --scenario, not the device
    with naming("--device"):
        device = _open_device(device_url, scenario, args.seed, is_sim)
    monitor = None
    try:
        name = getattr(getattr(device, "scenario", None), "name", None) or device.info.name
        seed = getattr(device, "seed", None)
        capture = None if args.no_capture else output_path(args.capture, default_capture_name(name, seed), args.force)
        layout = device.layout
        total_volume = sum(m.volume_m3 for m in layout.modules)
        leaks = [(lk.module, lk.start_s, lk.diameter_m, lk.cd)
                 for lk in getattr(getattr(device, "scenario", None), "leaks", ())]
        out = sys.stdout
        end = getattr(getattr(device, "scenario", None), "duration_s", None)
        if until is not None and end is not None and until > end:
            print(f"hullwatch run: note: --until {args.until:g} s is past the end of scenario {name} "
                  f"({hours_minutes(end)}); stopping at its end", file=sys.stderr)
            until = end
        duration = until if until is not None else end
        commands = None
        if args.commands:  # (before the header: a bad file is refused before the run starts)
            commands = load_sequence(args.commands, [v.id for v in layout.valves])
        if not args.quiet:
            seed_text = f" (seed {seed})" if seed is not None else ""
            span = f", {duration / 3600:.2f} h of mission time" if duration else ""
            pace = " in real time" if args.realtime else f" at {args.speed:g}x real time" if args.speed else ""
            out.write(f"hullwatch run: {name}{seed_text} on {device.info.kind}://{device.info.name}"
                      f"{span}{pace}, FDIR {args.mode}\n")
            if args.tc:
                virtual = getattr(device.clock, "virtual", False) and not (args.realtime or args.speed)
                note = " (virtual time, as fast as it runs: add --realtime to command it by hand)" if virtual else ""
                if not args.tm:
                    note += "; the reports go to the capture only (add --tm udp://HOST:PORT for a ground client)"
                out.write(f"telecommands: listening on {args.tc}{note}\n")
            out.flush()
        if args.monitor is not None:
            # deferred: the web server (tornado; ~0.2 s) loads only when --monitor asks for it
            from ..monitor import open_monitor

            # with a TC link (--tc) the page commands this run through it, as any ground tool would
            monitor = open_monitor(args.monitor, feed=True, source_name=f"hullwatch run {name}",
                                   tc=getattr(args, "tc", None))
            out.write(f"monitor: {monitor.url}\n")
            out.flush()
        fdir_cd = (params or default_params()).isolation.discharge_coefficient
        timeline = (Timeline(out, device.epoch_utc, leaks, total_volume, verbose=args.verbose,
                             module_names=[m.name for m in layout.modules], fdir_cd=fdir_cd,
                             module_volumes={m.name: m.volume_m3 for m in layout.modules})
                    if not args.quiet else None)
        sinks = []
        if timeline and (args.tc or commands):
            sinks.append(CommandConsole(timeline.note, device.epoch_utc, [v.id for v in layout.valves]))
        if monitor is not None:
            sinks.append(monitor.feed)
        paced = bool(args.realtime or args.speed) or not getattr(device.clock, "virtual", False)
        progress = _progress_bar(duration) if not args.no_progress and sys.stderr.isatty() else None
        try:
            result = run_scenario(
                device, until=until, fdir_params=params, mode=FdirMode[args.mode.upper()],
                capture=capture, tm_url=args.tm, tc_url=args.tc, commands=commands,
                sinks=sinks or None,
                clock="wall" if (args.realtime or args.speed) else None,
                speed=args.speed if args.speed else (1.0 if args.realtime else None),
                on_event=timeline.event if timeline else None,
                on_progress=progress.update if progress else None,
                progress_every_s=1.0 if paced else 60.0)
        except RunInterrupted as stop:
            if progress:
                progress.close()
                progress = None
            r = stop.result
            out.flush()
            print(f"hullwatch run: interrupted (Ctrl-C) at mission time {_clock(r.end_s)} "
                  f"after {len(r.events)} events", file=sys.stderr)
            if capture:
                print(f"capture: {file_kept_text(capture)} kept: intact, every packet in it whole up to "
                      f"mission time {_clock(r.end_s)}", file=sys.stderr)
            return 130
        finally:
            if progress:
                progress.close()
        if timeline:
            timeline.finish(result)
        out.write(f"verdict: {result.verdict}\n")
        if capture:
            stats = "" if args.quiet else (f", {result.cycles} cycles, {result.simulated_s / 3600:.2f} h in "
                                           f"{result.wall_s:.1f} s wall, {result.speedup:.0f}x real time")
            out.write(f"capture: {capture} ({_size(capture)}{stats})\n")
        else:
            out.write("capture: none (--no-capture)\n")
        out.flush()
        if args.plot:
            # deferred: only --plot reads the capture back (the ground capture reader, then matplotlib)
            from ..closed_loop.run_plot import plot_run

            plot_run(result, capture, args.plot)
            out.write(f"plot: {file_kept_text(args.plot)}\n")
        if monitor is not None:
            out.write(f"run finished; the monitor stays up at {monitor.url} until Ctrl-C\n")
            out.flush()
            wait_for_interrupt()
        if result.stale_data:
            # README: a board that is not answering is a device problem, whatever FDIR concluded.
            sys.stderr.write(f"hullwatch: error: {device_url}: the device link was lost and not "
                             "restored by the end of the run; the verdict was made on stale data\n")
            return EXIT_DEVICE
        return EXIT_VERDICT if result.correct is False else EXIT_OK
    finally:
        if monitor is not None:
            monitor.close()
        device.close()


def _size(path: str) -> str:
    try:
        return size_text(os.path.getsize(path))
    except OSError:
        return "not written"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def on_interrupt(args: argparse.Namespace) -> str:
    """What a Ctrl-C before the run started leaves (the CLI prints it)."""
    return "stopped before the run started; nothing written"


def _open_device(url: str, scenario: str | None, seed: int | None, is_sim: bool):
    if is_sim and scenario is not None:
        return open_device("sim://", scenario=load_scenario(scenario), **({"seed": seed} if seed is not None else {}))
    return open_run_device(url, scenario, seed)


class _Progress:
    """A tqdm bar of mission time on stderr (terminal only): minutes done of the run's minutes,
    the rate and the wall time left."""

    def __init__(self, total_s: float | None) -> None:
        total = total_s / 60.0 if total_s else None
        fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} min [{elapsed}<{remaining}]" if total \
            else "{desc}: {n:.0f} min [{elapsed}]"
        self.bar = progress_bar(total=total, unit="min", leave=False, desc="mission time", bar_format=fmt,
                                mininterval=0.5)

    def update(self, done_s: float, total_s: float) -> None:
        self.bar.update(done_s / 60.0 - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(total_s: float | None) -> _Progress | None:
    try:
        return _Progress(total_s)
    except Exception:  # noqa: BLE001 - a progress bar is never worth failing a run for
        return None
