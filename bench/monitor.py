"""Monitor benchmark: packets/s ingested without loss, and CPU use beside a 10 Hz real-time run.

    python bench/monitor.py [--rates 10000,20000,40000,60000] [--seconds 5] [--realtime-s 30]
                            [--only ingest,realtime]

The monitor runs as ``hullwatch monitor --tm udp://127.0.0.1:0`` in a process of its own (its CPU
time is read from /proc), with one live page attached: a websocket client in this process that
asks for a 15 min window and reads every update, as a browser would.

- ingest: a sender process sends the packets of a real soyuz-ms09 capture (mostly 380-byte
  raw-samples packets, a housekeeping report every ten, the leak's events) as UDP datagrams at a
  fixed rate for ``--seconds``; afterwards ``/api/state`` says how many the monitor received.
  Lost = sent - received. Target: >= 20,000 packets/s with none lost. Also printed: the monitor's
  CPU seconds over the wall seconds, and the load average (the machine is shared).
- realtime: ``hullwatch run --realtime --until N --tm udp://...`` (10 Hz cycles, 1 Hz
  housekeeping) for ``--realtime-s`` seconds; the monitor's CPU seconds over the wall seconds.
  Target: <= 10 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import tornado.websocket

from hullwatch.tools.ground import iter_raw_packets

TARGET_RATE = 20_000
TARGET_CPU = 0.10
HULLWATCH = [sys.executable, "-m", "hullwatch.tools"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def get_state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state?events=0", timeout=10) as r:
        return json.loads(r.read())


class Monitor:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([*HULLWATCH, "monitor", "--tm", "udp://127.0.0.1:0", "--http", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        m = re.match(r"hullwatch monitor: (\S+) showing udp://([\d.]+):(\d+);", line)
        if not m:
            raise SystemExit(f"monitor did not start: {line}{self.proc.stderr.read()}")  # type: ignore[union-attr]
        self.url, self.udp = m.group(1), (m.group(2), int(m.group(3)))
        self.updates = 0
        self._stop = threading.Event()
        self._page = threading.Thread(target=lambda: asyncio.run(self._watch()), daemon=True)
        self._page.start()

    async def _watch(self) -> None:
        """A page: the live feed read as it comes."""
        ws = await tornado.websocket.websocket_connect(self.url.replace("http://", "ws://") + "ws")
        await ws.write_message(json.dumps({"window_s": 900, "points": 1500}))
        while not self._stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.read_message(), 0.5)
            except asyncio.TimeoutError:
                continue
            if msg is None:
                break
            self.updates += 1
        ws.close()

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self._stop.set()
        self._page.join(timeout=5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=20)


def make_capture(path: str, seconds: float) -> list[bytes]:
    subprocess.run([*HULLWATCH, "run", "--until", str(seconds), "--capture", path, "--quiet"], check=True,
                   capture_output=True)
    return [raw for _, raw in iter_raw_packets(path)]


def sender(path: str, host: str, port: int, rate: float, seconds: float) -> None:
    """(In a child process) send the capture's packets at ``rate`` per second, in 1 ms slices."""
    packets = [raw for _, raw in iter_raw_packets(path)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    total = int(rate * seconds)
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        while sent < due:
            sock.sendto(packets[sent % len(packets)], (host, port))
            sent += 1
        time.sleep(0.001)
    print(json.dumps({"sent": sent, "seconds": time.perf_counter() - t0}))


def bench_ingest(capture: str, rates: list[int], seconds: float) -> bool:
    print(f"ingest: UDP datagrams of a soyuz-ms09 capture at a fixed rate for {seconds:g} s, one page attached")
    print(f"  {'rate/s':>8} {'sent':>8} {'received':>9} {'lost':>6} {'achieved/s':>10} {'CPU s':>6} {'wall s':>6} "
          f"{'CPU %':>6}  load")
    best = 0
    for rate in rates:
        mon = Monitor()
        try:
            c0, w0 = mon.cpu(), time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--send", capture, mon.udp[0], str(mon.udp[1]), str(rate),
                                  str(seconds)], capture_output=True, text=True, check=True)
            report = json.loads(out.stdout)
            deadline = time.monotonic() + 10
            received = -1
            while time.monotonic() < deadline:  # until the count stops moving
                now = get_state(mon.url)["link"]["packets"]
                if now == received:
                    break
                received = now
                time.sleep(0.3)
            cpu, wall = mon.cpu() - c0, time.perf_counter() - w0
        finally:
            mon.close()
        lost = report["sent"] - received
        achieved = report["sent"] / report["seconds"]
        if lost == 0:
            best = max(best, rate)
        print(f"  {rate:>8} {report['sent']:>8} {received:>9} {lost:>6} {achieved:>10.0f} {cpu:>6.2f} {wall:>6.1f} "
              f"{100 * cpu / wall:>5.0f}%  {load()}")
    ok = best >= TARGET_RATE
    print(f"  highest rate with no loss: {best} packets/s (target >= {TARGET_RATE}): {'MET' if ok else 'NOT MET'}")
    return ok


def bench_realtime(seconds: float) -> bool:
    print(f"realtime: hullwatch run --realtime for {seconds:g} s (10 Hz) sending to the monitor, one page attached")
    mon = Monitor()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            c0, w0 = mon.cpu(), time.perf_counter()
            subprocess.run([*HULLWATCH, "run", "--realtime", "--until", str(seconds), "--tm",
                            f"udp://{mon.udp[0]}:{mon.udp[1]}", "--capture", os.path.join(tmp, "rt.tm"), "--quiet"],
                           capture_output=True, text=True)
            cpu, wall = mon.cpu() - c0, time.perf_counter() - w0
            state = get_state(mon.url)
    finally:
        mon.close()
    share = cpu / wall
    ok = share <= TARGET_CPU
    print(f"  monitor CPU {cpu:.2f} s over {wall:.1f} s wall = {100 * share:.1f} % of one core "
          f"(target <= {100 * TARGET_CPU:.0f} %): {'MET' if ok else 'NOT MET'}")
    print(f"  packets received {state['link']['packets']}, gaps {state['link']['sequence_gaps']}, "
          f"page updates read {mon.updates}; load {load()}")
    return ok


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        path, host, port, rate, seconds = sys.argv[2:7]
        sender(path, host, int(port), float(rate), float(seconds))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10000,20000,40000,60000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--realtime-s", type=float, default=30.0)
    ap.add_argument("--only", default="ingest,realtime")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"hullwatch monitor benchmark; {os.cpu_count()} cores; load {load()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if "ingest" in only:
            capture = os.path.join(tmp, "ms09.tm")
            make_capture(capture, 600)
            results.append(bench_ingest(capture, [int(r) for r in args.rates.split(",")], args.seconds))
        if "realtime" in only:
            results.append(bench_realtime(args.realtime_s))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
