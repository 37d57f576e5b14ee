"""Benchmark: hardware-in-the-loop cycles per second over a pseudo-terminal, and request latency.

Prints, beside the targets (docs/architecture.md, "Reference figures"):

* HIL cycles/s: the flight software on soyuz-ms09 with the board emulator in its own process on a
  real pseudo-terminal (``hullwatch board --pty``): per cycle the plant steps, its 31 readings are
  injected into the board (HIL_INJECT), the frame is read back (READ_SAMPLES), FDIR and telemetry
  run. Target: >= 1,000 cycles/s (100x real time at 10 Hz). Ratios to the same loop on sim://
  (no board) and on the in-process emulator (emuboard://, no pty, no second process).
* request round trip over the pty: PING (empty), READ_SAMPLES (445-byte response) and
  HIL_INJECT (31 channels and the 6-valve feedback block), median and p99 (docs/architecture.md: a bare pty round trip of an 80-byte frame is
  ~32 us p50, 156 us p99).

Usage: ``python bench/hil.py [--seconds S] [--requests N]`` (mission seconds per HIL run,
default 300; requests per latency figure, default 3000). Noisy on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from hullwatch.firmware.flight import FlightSoftware
from hullwatch.hal import wire
from hullwatch.hal.board_link import BoardLink
from hullwatch.sim.device import open_url as open_sim
from hullwatch.tools.board.hil_device import open_hil_device, start_emulator

TARGET_CYCLES_PER_S = 1_000


def loop_rate(device, seconds: float) -> float:
    """Cycles per wall second of the flight software on ``device`` for ``seconds`` of mission."""
    flight = FlightSoftware(device)
    flight.run(1.0)  # warm up: first cycles, layout report
    t0 = time.perf_counter()
    c0 = flight.executive.cycles
    flight.run(1.0 + seconds)
    rate = (flight.executive.cycles - c0) / (time.perf_counter() - t0)
    flight.close()
    return rate


def latency(link: BoardLink, msg: wire.Message, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        link.request_raw(msg)
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(0.99 * (len(samples) - 1))] * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="mission seconds per HIL run")
    ap.add_argument("--requests", type=int, default=3000, help="requests per latency figure")
    args = ap.parse_args()

    with open_sim("sim://soyuz-ms09") as sim:
        sim_rate = loop_rate(sim, args.seconds)
    with open_hil_device("emuboard://bench", scenario="soyuz-ms09") as dev:
        inproc_rate = loop_rate(dev, args.seconds)

    with start_emulator() as board:
        with open_hil_device(board.url, scenario="soyuz-ms09") as dev:
            pty_rate = loop_rate(dev, args.seconds)
            health = dev.health()
        link = BoardLink.open(board.url)
        link.identify()
        ping = latency(link, wire.Ping(b""), args.requests)
        read = latency(link, wire.ReadSamples(), args.requests)
        read_bytes = len(wire.encode_frame(wire.MsgType.SAMPLES, 0, link.request_raw(wire.ReadSamples())))
        link.request(wire.HilEnter(1))
        # The per-cycle message of protocol 1.1: every channel and every valve's feedback.
        inject = wire.HilInject(0, 0, tuple([100_000.0] * 18 + [295.0] * 12 + [0.0]),
                                wire.ValveStimulus(0, (10_000,) * 5 + (0,)))
        inj = latency(link, inject, args.requests)
        link.request(wire.HilEnter(0))
        link.close()

    print(f"HIL cycles/s over a pty (soyuz-ms09, {args.seconds:g} s of mission, emulator in its own process)")
    print(f"  pty, separate process   {pty_rate:10,.0f} cycles/s   target >= {TARGET_CYCLES_PER_S:,}"
          f"   ({pty_rate / TARGET_CYCLES_PER_S:.2f}x target, {pty_rate / 10:,.0f}x real time at 10 Hz)")
    print(f"  emuboard:// in process  {inproc_rate:10,.0f} cycles/s   ({inproc_rate / pty_rate:.2f}x the pty figure)")
    print(f"  sim:// (no board)       {sim_rate:10,.0f} cycles/s   (HIL costs {sim_rate / pty_rate:.1f}x the pure simulation)")
    print(f"  link during the run: {health['requests']} requests, {health['timeouts']} timeouts, "
          f"{health['crc_errors']} CRC errors")
    print(f"request round trip over the pty ({args.requests} each)        median      p99")
    for name, (p50, p99) in (("PING (empty)", ping), (f"READ_SAMPLES ({read_bytes} B reply)", read),
                             ("HIL_INJECT (31 ch + 6 valves)", inj)):
        print(f"  {name:<28} {p50:8.0f} us {p99:8.0f} us")
    print("  reference: bare pty round trip of an 80-byte frame, p50 32 us, p99 156 us (docs/architecture.md)")


if __name__ == "__main__":
    main()
