"""Benchmark: hardware-in-the-loop cycles per second, through a clean and a faulty line, and
request latency. Prints each figure beside its target (CPU time beside wall clock, and the load
average: on a shared machine the wall figures follow the load); asserts nothing.

(1) HIL cycles/s: the flight software on soyuz-ms09 with the board in the loop: per cycle the
    plant steps, its 31 readings and 6 valve positions go to the board and the frame comes back
    (one HIL_STEP exchange with a protocol 1.2 board; HIL_INJECT + READ_SAMPLES with 1.1), FDIR
    and telemetry run. Over a real pseudo-terminal with the emulator in its own process
    (``hullwatch board --pty``), target >= 5,000 cycles/s; in process (``emuboard://``), target
    >= 15,000; beside the same loop on ``sim://`` (no board). "per CPU s" divides by the CPU time
    of the host process plus, over the pty, of the emulator process. The difference of the
    in-process and sim:// CPU times per cycle is the board path's cost (host encode, framing,
    emulator decode, conversion and encode, host decode), printed beside what the target allows.
(2) A degraded link: the same HIL loop on nominal-24h through a fault-injecting pty relay
    (hullwatch.sim.pty_relay, its own process) with a bit-error rate of 2e-5, 1e-5 lost bytes
    per byte and garbage bursts (2 per s of 64 random bytes); then with a 3 s dead line as well.
    Target: >= 50 % of the clean relay's throughput, and no leak event caused by link faults.
    The bursts and the dead line are timed by the relay's wall clock (from its start), so these
    runs are longer (``--relay-seconds``, default 3,000 s of mission: about 10 s of wall time on
    a clean line): a run of a second or two would see no burst and end before the line dies.
    Each row prints what the relay did (bursts sent, bytes lost while dead), so a row that did not
    exercise its fault says so.
(3) Request round trips over the pty: PING, READ_SAMPLES, HIL_INJECT, HIL_STEP (median, p99).

Usage: ``python bench/hil.py [--seconds S] [--repeats N] [--relay-seconds S] [--requests N]``
(mission seconds per HIL run of (1), default 600, and of (2), default 3000; runs of each
configuration of (1), default 5, interleaved, the median printed with the range; requests per
latency figure, default 2000).
"""

from __future__ import annotations

import os

# No BLAS call is made, but numpy's OpenBLAS starts a worker pool at import that spins on the
# other core for a while; its CPU time would be counted as the loop's. One thread: none.
# (Set before numpy is first imported, below.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import re
import statistics
import subprocess
import sys
import time

from hullwatch.firmware.flight import FlightSoftware
from hullwatch.hal import wire
from hullwatch.hal.board_link import BoardLink
from hullwatch.sim.device import open_url as open_sim
from hullwatch.tools.board.hil_device import open_hil_device, start_emulator
from hullwatch.tools.closed_loop.runner import run_scenario

TARGET_PTY = 5_000
TARGET_IN_PROCESS = 15_000
TARGET_DEGRADED = 0.5
FAULTS = ["--ber", "2e-5", "--drop", "1e-5", "--burst-rate", "2", "--burst", "64"]


def cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux /proc), 0.0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def loop_rate(device, seconds: float, other_pid: int | None = None) -> tuple[float, float]:
    """(cycles per wall second, cycles per CPU second) of the flight software on ``device``."""
    flight = FlightSoftware(device)
    flight.run(1.0)  # warm up: first cycles, layout report
    t0, c0, o0 = time.perf_counter(), time.process_time(), cpu_of(other_pid)
    k0 = flight.executive.cycles
    flight.run(1.0 + seconds)
    n = flight.executive.cycles - k0
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0 + cpu_of(other_pid) - o0
    flight.close()
    return n / wall, n / cpu if cpu > 0 else float("nan")


def median_rate(rates: list[tuple[float, float]]) -> tuple[float, float]:
    """The median of the runs' (wall, per CPU s) figures, each taken on its own."""
    return statistics.median(w for w, _ in rates), statistics.median(c for _, c in rates)


def latency(link: BoardLink, msg: wire.Message, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        link.request_raw(msg)
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(0.99 * (len(samples) - 1))] * 1e6


def start_relay(board_path: str, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "hullwatch.sim.pty_relay", board_path, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    m = re.search(r"on (\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"pty relay did not start: {line} {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, m.group(1)


def relay_run(board_path: str, seconds: float, *args: str) -> tuple[float, float, list[str], dict, str]:
    """(cycles/s wall, per CPU s, leak events, link counters, relay report) of nominal-24h."""
    proc, path = start_relay(board_path, *args)
    try:
        with open_hil_device(f"serial://{path}", scenario="nominal-24h") as dev:
            t0, c0, r0 = time.perf_counter(), time.process_time(), cpu_of(proc.pid)
            result = run_scenario(dev, until=seconds)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0 + cpu_of(proc.pid) - r0
            health = dev.health()
    finally:
        proc.terminate()
        _, report = proc.communicate(timeout=10)
    leaks = [f"{e.name} {e.subject} at {e.t:.1f} s" for e in result.events
             if e.name.startswith("LEAK") or e.name == "RAPID_DEPRESS"]
    return result.cycles / wall, result.cycles / cpu, leaks, health, report.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="mission seconds per HIL run")
    ap.add_argument("--relay-seconds", type=float, default=3000.0,
                    help="mission seconds per run through the relay (long enough for its bursts and dead line)")
    ap.add_argument("--requests", type=int, default=2000, help="requests per latency figure")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each HIL configuration of (1), interleaved")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")

    # Every configuration runs --repeats times, interleaved (sim, in process, pty, ...), and the
    # median is printed with the range: on a shared machine one run can be slowed by another
    # process for part of its second.
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("sim", "inproc", "inproc11", "pty", "pty11")}
    with start_emulator() as board, start_emulator("--protocol", "1.1") as board11:
        for _ in range(args.repeats):
            with open_sim("sim://soyuz-ms09") as sim:
                runs["sim"].append(loop_rate(sim, args.seconds))
            with open_hil_device("emuboard://bench", scenario="soyuz-ms09") as dev:
                runs["inproc"].append(loop_rate(dev, args.seconds))
            with open_hil_device("emuboard://bench11?protocol=1.1", scenario="soyuz-ms09") as dev:
                runs["inproc11"].append(loop_rate(dev, args.seconds))
            for key, b in (("pty", board), ("pty11", board11)):
                pid = b.process.pid if b.process else None
                with open_hil_device(b.url, scenario="soyuz-ms09") as dev:
                    runs[key].append(loop_rate(dev, args.seconds, pid))
                    if key == "pty":
                        health = dev.health()
        link = BoardLink.open(board.url)
        link.identify()
        ping = latency(link, wire.Ping(b""), args.requests)
        read = latency(link, wire.ReadSamples(), args.requests)
        read_bytes = len(wire.encode_frame(wire.MsgType.SAMPLES, 0, link.request_raw(wire.ReadSamples())))
        link.request(wire.HilEnter(1))
        values = tuple([100_000.0] * 18 + [295.0] * 12 + [0.0])
        stim = wire.ValveStimulus(0, (10_000,) * 5 + (0,))
        inj = latency(link, wire.HilInject(0, 0, values, stim), args.requests)
        step = latency(link, wire.HilStep(0, 0, values, stim), args.requests)
        link.request(wire.HilEnter(0))
        link.close()
    sim_rate, inproc, inproc11, pty, pty11 = (median_rate(runs[k]) for k in
                                              ("sim", "inproc", "inproc11", "pty", "pty11"))

    with start_emulator("--scenario", "nominal-24h") as board:
        path = board.url[len("serial://"):]
        clean = relay_run(path, args.relay_seconds)
        faulty = relay_run(path, args.relay_seconds, *FAULTS)
        dead = relay_run(path, args.relay_seconds, *FAULTS, "--dead-at", "2", "--dead-for", "3")

    print(f"(1) HIL cycles/s, soyuz-ms09, {args.seconds:g} s of mission, median of {args.repeats} interleaved runs"
          "       wall        per CPU s")
    print(f"  pty, board in its own process (1.2)  {pty[0]:10,.0f} {pty[1]:14,.0f}   target >= {TARGET_PTY:,}"
          f" ({pty[0] / TARGET_PTY:.2f}x wall, {pty[1] / TARGET_PTY:.2f}x per CPU s)")
    print(f"  pty, 1.1 board (two exchanges)       {pty11[0]:10,.0f} {pty11[1]:14,.0f}")
    print(f"  emuboard:// in process (1.2)         {inproc[0]:10,.0f} {inproc[1]:14,.0f}   target >= "
          f"{TARGET_IN_PROCESS:,} ({inproc[0] / TARGET_IN_PROCESS:.2f}x wall, "
          f"{inproc[1] / TARGET_IN_PROCESS:.2f}x per CPU s)")
    print(f"  emuboard:// in process (1.1, two ex.) {inproc11[0]:9,.0f} {inproc11[1]:14,.0f}")
    print(f"  sim:// (no board)                    {sim_rate[0]:10,.0f} {sim_rate[1]:14,.0f}")
    for key, name in (("pty", "pty (1.2)"), ("inproc", "in process (1.2)"), ("sim", "sim://")):
        walls = sorted(w for w, _ in runs[key])
        cpus = sorted(c for _, c in runs[key])
        print(f"  range, {name}: wall {walls[0]:,.0f}-{walls[-1]:,.0f}, per CPU s {cpus[0]:,.0f}-{cpus[-1]:,.0f}")
    print(f"  board path in process (1.2): {1e6 / inproc[1] - 1e6 / sim_rate[1]:.1f} us per cycle of CPU "
          f"(emuboard:// minus sim://); the target needs <= {1e6 / TARGET_IN_PROCESS - 1e6 / sim_rate[1]:.1f}")
    print(f"  pty link during the run: {health['requests']} requests, {health['timeouts']} timeouts, "
          f"{health['crc_errors']} CRC errors")
    print(f"(2) degraded link, nominal-24h, {args.relay_seconds:g} s of mission through a pty relay (its own process)"
          "   wall    per CPU s")
    for name, (wall, cpu, leaks, h, report) in (("clean relay", clean), ("BER 2e-5 + drops + bursts", faulty),
                                                 ("... and a 3 s dead line", dead)):
        ratio = wall / clean[0]
        print(f"  {name:<28} {wall:9,.0f} {cpu:11,.0f}   {ratio:6.0%} of clean (wall), "
              f"{cpu / clean[1]:.0%} (per CPU s)"
              + (f"   target >= {TARGET_DEGRADED:.0%}" if name != "clean relay" else ""))
        print(f"      leak events: {', '.join(leaks) if leaks else 'none'}; link: {h['retries']} retries, "
              f"{h['timeouts']} timeouts, {h['crc_errors'] + h['cobs_errors']} damaged frames, "
              f"{h['failed_reads']} failed cycles, {h['link_lost']} link losses")
        print(f"      relay: {report}")
    print(f"(3) request round trip over the pty ({args.requests} each)        median      p99")
    for name, (p50, p99) in (("PING (empty)", ping), (f"READ_SAMPLES ({read_bytes} B reply)", read),
                             ("HIL_INJECT (31 ch + 6 valves)", inj), ("HIL_STEP (inject + samples)", step)):
        print(f"  {name:<32} {p50:8.0f} us {p99:8.0f} us")
    print("  reference: bare pty round trip of an 80-byte frame, p50 32 us, p99 156 us (idle machine)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
