"""Benchmark: telecommand round trip and a telecommand flood over the UDP TC link.

The flight software runs as ``hullwatch run --realtime --tc ... --tm ...`` (its own process, wall
clock, 10 Hz) on the simulated station; this process is the ground.

* round trip: a 17/1 ping sent at a random phase of the cycle, timed until its 1/7 completion
  report arrives on the telemetry socket; p50 and p99 over ``--pings`` pings. A telecommand waits
  for the start of the next cycle (on average half a period), so the target is p99 <= one cycle
  period + 1 ms (101 ms at 10 Hz).
* flood: ``--rate`` telecommands per second (default 10,000) for ``--flood-s`` seconds. Every one
  must be accounted for by a report: a completion (1/7), an acceptance failure (1/2, the queue
  holds 64 a cycle; refusals are reported 256 a cycle at most), or the count in a
  ``TELECOMMANDS_LOST`` event; "unreported" must be 0 once the reports stop.

Prints CPU time (this process, and the flight process from /proc) beside wall clock, and the
load average. Usage: ``python bench/commanding.py [--pings N] [--rate R] [--flood-s S]``.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from hullwatch.firmware.telemetry import fast_decode
from hullwatch.firmware.telemetry import packets as P
from hullwatch.firmware.types import EventId

PERIOD_S = 0.1
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def ping(seq: int) -> bytes:
    return P.encode(P.make_packet(P.AreYouAlive(), seq=seq & 0x3FFF, dest_id=16, ack_flags=15))


def round_trips(tx: socket.socket, rx: socket.socket, to: tuple[str, int], n: int) -> list[float]:
    out = []
    for i in range(n):
        time.sleep(random.uniform(0.0, PERIOD_S))
        seq = i & 0x3FFF
        t0 = time.perf_counter()
        tx.sendto(ping(seq), to)
        deadline = t0 + 2.0
        while time.perf_counter() < deadline:
            rx.settimeout(max(1e-3, deadline - time.perf_counter()))
            try:
                raw = rx.recv(70000)
            except socket.timeout:
                break
            if (int.from_bytes(raw[:2], "big") & 0x7FF) != P.APID_COMMAND:
                continue
            d = fast_decode(raw).data
            if isinstance(d, P.VerificationReport) and d.request_seq == seq and d.stage == 7:
                out.append(time.perf_counter() - t0)
                break
    return out


def flood(tx: socket.socket, rx: socket.socket, to: tuple[str, int], rate: float, seconds: float) -> dict:
    packets = [ping(i) for i in range(16384)]
    sent = 0
    counts = {"completed": 0, "refused": 0, "other_failures": 0, "lost": 0}
    rx.setblocking(False)

    def drain() -> None:
        while True:
            try:
                raw = rx.recv(70000)
            except BlockingIOError:
                return
            apid = int.from_bytes(raw[:2], "big") & 0x7FF
            if apid == P.APID_COMMAND and raw[7] == 1:
                sub = raw[8]
                if sub == 7:
                    counts["completed"] += 1
                elif sub == 2:
                    code = int.from_bytes(raw[23:25], "big")
                    counts["refused" if code == P.VerificationError.QUEUE_FULL else "other_failures"] += 1
            elif apid == P.APID_EVENT:
                ev = fast_decode(raw).data
                if ev.event_id == EventId.TELECOMMANDS_LOST:
                    counts["lost"] += int(ev.values[0])

    t0 = time.perf_counter()
    batch = max(1, int(rate / 1000))  # a burst every millisecond
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due:
            for _ in range(min(batch, due - sent)):
                tx.sendto(packets[sent & 0x3FFF], to)
                sent += 1
        drain()
        time.sleep(0.0005)
    wall = time.perf_counter() - t0
    # Refusals are reported a bounded number per cycle (256): wait until the reports stop (1 s
    # without a new one), at most 15 s.
    end = time.perf_counter() + 15.0
    quiet_from, seen = time.perf_counter(), -1
    while time.perf_counter() < end and time.perf_counter() - quiet_from < 1.0:
        drain()
        total = counts["completed"] + counts["refused"] + counts["other_failures"] + counts["lost"]
        if total != seen:
            seen, quiet_from = total, time.perf_counter()
        time.sleep(0.01)
    counts["sent"] = sent
    counts["send_rate"] = sent / wall
    counts["unreported"] = sent - counts["completed"] - counts["refused"] - counts["other_failures"] - counts["lost"]
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=300, help="round trips measured")
    ap.add_argument("--rate", type=float, default=10_000.0, help="flood rate, telecommands per second")
    ap.add_argument("--flood-s", type=float, default=3.0, help="flood duration, s")
    args = ap.parse_args()
    tc, tm = free_port(), free_port()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", tm))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to = ("127.0.0.1", tc)
    until = args.pings * PERIOD_S * 2 + args.flood_s + 60
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, "-m", "hullwatch.tools", "run", "--realtime", "--quiet",
                                 "--until", str(until), "--tc", f"udp://127.0.0.1:{tc}",
                                 "--tm", f"udp://127.0.0.1:{tm}", "--capture", os.path.join(tmp, "bench.tm")],
                                stdout=subprocess.DEVNULL)
        try:
            print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; flight software "
                  f"pid {proc.pid} at 10 Hz on a wall clock")
            warm = round_trips(tx, rx, to, 20)  # waits for the flight software to come up
            if not warm:
                time.sleep(3)
            cpu0, fcpu0, w0 = time.process_time(), proc_cpu_s(proc.pid), time.perf_counter()
            rtt = sorted(round_trips(tx, rx, to, args.pings))
            wall, cpu, fcpu = time.perf_counter() - w0, time.process_time() - cpu0, proc_cpu_s(proc.pid) - fcpu0
            p50 = statistics.median(rtt) * 1e3
            p99 = rtt[int(0.99 * (len(rtt) - 1))] * 1e3
            target = PERIOD_S * 1e3 + 1.0
            print(f"TC -> 1/7 round trip, {len(rtt)}/{args.pings} pings: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                  f"max {rtt[-1] * 1e3:.1f} ms (target p99 <= {target:.0f} ms: {'met' if p99 <= target else 'MISSED'})")
            print(f"    wall {wall:.1f} s; CPU: ground {cpu:.2f} s, flight software {fcpu:.2f} s "
                  f"({fcpu / wall * 100:.1f} % of a core); load average {os.getloadavg()[0]:.2f}")
            cpu0, fcpu0, w0 = time.process_time(), proc_cpu_s(proc.pid), time.perf_counter()
            f = flood(tx, rx, to, args.rate, args.flood_s)
            wall, cpu, fcpu = time.perf_counter() - w0, time.process_time() - cpu0, proc_cpu_s(proc.pid) - fcpu0
            print(f"flood: {f['sent']} telecommands at {f['send_rate']:.0f}/s for {args.flood_s:g} s: "
                  f"{f['completed']} completed ({f['completed'] / args.flood_s:.0f}/s), {f['refused']} refused "
                  f"(1/2 QUEUE_FULL), {f['other_failures']} other failures, {f['lost']} lost (counted in "
                  f"TELECOMMANDS_LOST), unreported {f['unreported']} (target 0: "
                  f"{'met' if f['unreported'] == 0 else 'MISSED'})")
            print(f"    wall {wall:.1f} s; CPU: ground {cpu:.2f} s, flight software {fcpu:.2f} s "
                  f"({fcpu / wall * 100:.1f} % of a core); load average {os.getloadavg()[0]:.2f}")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
