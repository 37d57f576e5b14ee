"""``hullwatch run``: the flight software in closed loop on a simulated station or a board."""

from __future__ import annotations

import argparse
import re
import sys

from ...firmware.types import FdirMode
from ..errors import EXIT_OK, EXIT_VERDICT, InputError

EXAMPLES = """\
examples:
  hullwatch run                                 soyuz-ms09 on the simulated station, timeline + verdict
  hullwatch run --scenario nominal-24h --quiet  a quiet day: must raise no leak event
  hullwatch run --scenario prk-slow --until 2h --plot prk.png
  hullwatch run --scenario ./my-station.toml --seed 3 --capture my.tm
  hullwatch run --mode passive                  detect and report only, command no valve
  hullwatch run --fdir my-params.toml           another FDIR parameter table (see docs/fdir.md)
  hullwatch run --realtime --tm udp://127.0.0.1:10025   real time, telemetry to a ground system
  hullwatch run --device serial:///dev/ttyACM0 --scenario soyuz-ms09   hardware in the loop

The capture defaults to <scenario>-seed<N>.tm in the current directory. Exit status: 0 when the
verdict is right (or there is no truth to judge by), 1 when FDIR missed, mislocated or raised a
false alarm, 2 for bad input (scenario, parameters, arguments), 4 for a device problem.
"""

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``3600``, ``90s``, ``90m``, ``2h``, ``1h30m``, ``1d`` -> seconds (> 0).

    Raises InputError naming what was expected."""
    s = text.strip().lower()
    try:
        value = float(s)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d*)?)\s*(min|s|m|h|d)", s)
        if not parts or "".join(n + u for n, u in parts) != s.replace(" ", ""):
            raise InputError(f"--until {text!r}: expected a duration such as 3600, 90s, 90m, 2h or 1h30m") from None
        value = sum(float(n) * _UNITS[u] for n, u in parts)
    if not value > 0:
        raise InputError(f"--until {text!r}: expected a duration > 0")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the flight software in closed loop (default: soyuz-ms09 on the simulated station)",
        description="Run the flight software (executive, FDIR, telemetry) against a simulated "
        "station or a USB sensor board, print the timeline of what FDIR saw and did, end with a "
        "one-line verdict and write a telemetry capture.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", metavar="NAME|PATH", default=None,
                   help="scenario preset or TOML file (default: soyuz-ms09 on sim://)")
    p.add_argument("--device", metavar="URL", default="sim://",
                   help="device URL: sim:// (default), serial:///dev/ttyACM0 or any pyserial URL "
                   "(with --scenario: hardware in the loop), replay://CAPTURE")
    p.add_argument("--until", metavar="DURATION", default=None,
                   help="mission time to stop at: 3600, 90m, 2h... (default: the scenario's duration)")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: the scenario's)")
    p.add_argument("--capture", metavar="FILE", default=None,
                   help="capture file (default: <scenario>-seed<N>.tm in the current directory)")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="write a PNG of pressure per module with the events marked")
    p.add_argument("--fdir", metavar="PARAMS.toml", default=None,
                   help="FDIR parameter table laid over the defaults (docs/fdir.md)")
    p.add_argument("--mode", choices=("active", "passive", "off"), default="active",
                   help="FDIR mode: active (isolates), passive (detects and reports), off")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="run in real time (wall clock)")
    pace.add_argument("--speed", type=float, metavar="N", default=None,
                      help="run on a wall clock N times faster than real time")
    p.add_argument("--tm", metavar="udp://HOST:PORT", default=None, help="also send telemetry over UDP")
    p.add_argument("--quiet", action="store_true", help="print only the verdict")
    p.add_argument("--verbose", action="store_true", help="also show cycle overrun events")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ...firmware.fdir.params import load_params
    from ..closed_loop.runner import default_capture_name, run_scenario
    from ..closed_loop.timeline import Timeline

    until = parse_duration(args.until) if args.until is not None else None
    if args.speed is not None and not args.speed > 0:
        raise InputError(f"--speed {args.speed:g}: expected a number > 0")
    params = load_params(args.fdir) if args.fdir else None  # bad table: ParameterError, exit 2
    device_url = args.device
    scenario = args.scenario
    is_sim = device_url.lower().startswith("sim://")
    if is_sim:
        target = device_url[len("sim://"):].partition("?")[0]
        if scenario is None and not target:
            scenario = "soyuz-ms09"
    device = _open_device(device_url, scenario, args.seed, is_sim)
    try:
        name = getattr(getattr(device, "scenario", None), "name", None) or device.info.name
        seed = getattr(device, "seed", None)
        capture = args.capture or default_capture_name(name, seed)
        layout = device.layout
        total_volume = sum(m.volume_m3 for m in layout.modules)
        leaks = [(lk.module, lk.start_s, lk.diameter_m, lk.cd)
                 for lk in getattr(getattr(device, "scenario", None), "leaks", ())]
        out = sys.stdout
        duration = until if until is not None else getattr(getattr(device, "scenario", None), "duration_s", None)
        if not args.quiet:
            seed_text = f" (seed {seed})" if seed is not None else ""
            span = f", {duration / 3600:.2f} h of mission time" if duration else ""
            pace = " in real time" if args.realtime else f" at {args.speed:g}x real time" if args.speed else ""
            out.write(f"hullwatch run: {name}{seed_text} on {device.info.kind}://{device.info.name}"
                      f"{span}{pace}, FDIR {args.mode}\n")
            out.flush()
        timeline = (Timeline(out, device.epoch_utc, leaks, total_volume, verbose=args.verbose,
                             module_names=[m.name for m in device.layout.modules])
                    if not args.quiet else None)
        progress = _progress_bar(duration) if not args.quiet and sys.stderr.isatty() else None
        try:
            result = run_scenario(
                device, until=until, fdir_params=params, mode=FdirMode[args.mode.upper()],
                capture=capture, tm_url=args.tm,
                clock="wall" if (args.realtime or args.speed) else None,
                speed=args.speed if args.speed else (1.0 if args.realtime else None),
                on_event=timeline.event if timeline else None,
                on_progress=progress.update if progress else None)
        finally:
            if progress:
                progress.close()
        if timeline:
            timeline.finish(result)
        if args.plot:
            from ..closed_loop.run_plot import plot_run

            plot_run(result, capture, args.plot)
        out.write(f"verdict: {result.verdict}\n")
        if not args.quiet:
            out.write(f"capture: {capture} ({result.cycles} cycles, {result.simulated_s / 3600:.2f} h "
                      f"in {result.wall_s:.1f} s wall, {result.speedup:.0f}x real time)\n")
            if args.plot:
                out.write(f"plot: {args.plot}\n")
        return EXIT_VERDICT if result.correct is False else EXIT_OK
    finally:
        device.close()


def _open_device(url: str, scenario: str | None, seed: int | None, is_sim: bool):
    from ...hal import open as open_device
    from ..closed_loop.runner import open_run_device

    if is_sim and scenario is not None:
        from ...sim.scenario import load_scenario

        return open_device("sim://", scenario=load_scenario(scenario), **({"seed": seed} if seed is not None else {}))
    return open_run_device(url, scenario, seed)


class _Progress:
    """A tqdm bar in mission minutes on stderr (terminal only)."""

    def __init__(self, total_s: float | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=round(total_s / 60.0, 1) if total_s else None, unit="min", file=sys.stderr,
                        leave=False, desc="mission time", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} min")
        self.done = 0.0

    def update(self, done_s: float, total_s: float) -> None:
        self.bar.update(round(done_s / 60.0 - self.done, 1))
        self.done = done_s / 60.0

    def close(self) -> None:
        self.bar.close()


def _progress_bar(total_s: float | None) -> _Progress | None:
    try:
        return _Progress(total_s)
    except Exception:  # noqa: BLE001 - a progress bar is never worth failing a run for
        return None
