"""Benchmark: what the HIL test API costs on top of the bare flight loop.

The ``flight`` fixture (:class:`~hullwatch.tools.board.hil_flight.FlightUnderTest`) keeps every
packet in its history, writes the test's capture file and checks its wall-clock guard after every
cycle. This prints cycles per second of the same soyuz-ms09 run (a) with the bare
``FlightSoftware`` and (b) under ``FlightUnderTest`` with a capture, on sim:// (where the overhead
shows most) and on the in-process board emulator (``emuboard://``), with CPU time beside wall time
and the load average; then the cost of reading a named channel from an hour of raw samples.
No target: the figure to watch is the ratio.

Usage: ``python bench/hil_api.py [--seconds S]`` (mission seconds per run, default 600).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from hullwatch.firmware.flight import FlightSoftware
from hullwatch.sim.device import open_url as open_sim
from hullwatch.tools.board.hil_device import open_hil_device
from hullwatch.tools.board.hil_flight import FlightUnderTest


def timed(run) -> tuple[float, float, int]:
    """(wall s, CPU s, cycles) of ``run()``, which returns the cycles it ran."""
    w0, c0 = time.perf_counter(), time.process_time()
    cycles = run()
    return time.perf_counter() - w0, time.process_time() - c0, cycles


def bare(device, seconds: float) -> int:
    flight = FlightSoftware(device)
    flight.run(seconds)
    flight.close()
    return flight.executive.cycles


def api(device, seconds: float, capture: str) -> int:
    flight = FlightUnderTest(device, capture=capture, wall_timeout_s=None)
    flight.run_for(seconds)
    flight.close()
    return flight.cycles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="mission seconds per run")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="hil-api-bench-")
    rows = []
    for label, opener in (("sim://", lambda: open_sim("sim://soyuz-ms09")),
                          ("emuboard://", lambda: open_hil_device("emuboard://bench", scenario="soyuz-ms09"))):
        with opener() as dev:
            b = timed(lambda: bare(dev, args.seconds))
        with opener() as dev:
            a = timed(lambda: api(dev, args.seconds, os.path.join(out, "api.tm")))
        rows.append((label, b, a))
    print(f"HIL test API overhead (soyuz-ms09, {args.seconds:g} s of mission; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    print(f"  {'device':<12} {'bare cycles/s':>14} {'(cpu s/wall s)':>15} {'API cycles/s':>13} "
          f"{'(cpu s/wall s)':>15} {'API/bare':>9}")
    for label, (bw, bc, bn), (aw, ac, an) in rows:
        print(f"  {label:<12} {bn / bw:14,.0f} {f'{bc:.2f}/{bw:.2f}':>15} {an / aw:13,.0f} "
              f"{f'{ac:.2f}/{aw:.2f}':>15} {(an / aw) / (bn / bw):9.2f}")
    with open_sim("sim://soyuz-ms09") as dev:
        flight = FlightUnderTest(dev, wall_timeout_s=None)
        flight.run_for(3600)
        w, c, n = timed(lambda: len(flight.tm["soyuz-om.p1"]))
        w2, c2, _ = timed(lambda: len(flight.tm["soyuz-om.p2"]))
    print(f"  a named sensor channel over an hour ({n} raw packets): first read {w:.2f} s wall "
          f"({c:.2f} s CPU, decodes the packets), next channel {w2:.3f} s ({c2:.3f} s CPU)")


if __name__ == "__main__":
    main()
