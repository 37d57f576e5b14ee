"""A faulty line between a host and a board: a pseudo-terminal relay that injects byte faults.

The host opens the relay's pseudo-terminal instead of the board's; every byte crossing the
relay, in both directions, goes through a :class:`~hullwatch.sim.urlhandler.protocol_emuboard.LineFaults`
(bit flips at a bit-error rate, lost bytes), and bursts of random bytes (zeros included) reach
the host at random times. Optionally the line goes dead for a while (a pulled cable: bytes
vanish both ways, the port itself stays open, as with a USB isolator or a cut UART wire).

Run it in its own process (so it shares no interpreter lock with the host)::

    python -m hullwatch.sim.pty_relay /dev/pts/7 --ber 2e-5 --drop 1e-5 --burst-rate 2 --burst 64
    # prints "relaying /dev/pts/7 on /dev/pts/9"; the host opens /dev/pts/9

or in process with :class:`PtyRelay` (a background thread). ``bench/hil.py`` measures HIL
throughput through it; tests run short HIL runs through it.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import sys
import threading
import time
import tty
from dataclasses import dataclass

from .board_serve import make_pty
from .urlhandler.protocol_emuboard import LineFaults


@dataclass
class RelayFaults:
    """What the relay does to the line. ``ber``: probability per bit of a flip; ``drop``:
    probability per byte of its loss; ``burst_rate``: garbage bursts per second toward the host,
    each of ``burst`` random bytes; ``dead_at``/``dead_for``: seconds after start at which the
    line goes dead, and for how long (0: never)."""

    ber: float = 0.0
    drop: float = 0.0
    burst_rate: float = 0.0
    burst: int = 64
    dead_at: float = 0.0
    dead_for: float = 0.0
    seed: int = 1

    def line(self) -> LineFaults:
        # LineFaults flips one bit of a byte with probability ``noise`` per byte: 8 bits per byte.
        return LineFaults(noise=min(1.0, 8.0 * self.ber), drop=self.drop, seed=self.seed)


class RelayCounters:
    """Bytes relayed each way, and what the faults did (flipped bits, dropped bytes, garbage)."""

    def __init__(self) -> None:
        self.to_board = 0
        self.to_host = 0
        self.bursts = 0
        self.dead_bytes = 0


def relay(board_fd: int, host_fd: int, faults: RelayFaults, *, stop=lambda: False,
          counters: RelayCounters | None = None) -> LineFaults:
    """Move bytes between ``board_fd`` and ``host_fd`` (pty masters/slaves, non-blocking)
    through ``faults`` until ``stop()`` is true. Returns the LineFaults (its counters)."""
    line = faults.line()
    rng = random.Random(faults.seed + 1)
    counters = counters or RelayCounters()
    start = time.monotonic()
    next_burst = start + (rng.expovariate(faults.burst_rate) if faults.burst_rate > 0 else float("inf"))

    def dead(now: float) -> bool:
        return faults.dead_for > 0 and faults.dead_at <= now - start < faults.dead_at + faults.dead_for

    def write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [], 0.01)
                continue
            except OSError:
                return  # the other side is gone for now: the bytes are lost, as on a line
            view = view[n:]

    while not stop():
        now = time.monotonic()
        timeout = min(0.05, max(0.0, next_burst - now))
        try:
            ready, _, _ = select.select([board_fd, host_fd], [], [], timeout)
        except (OSError, ValueError):
            return line
        now = time.monotonic()
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                time.sleep(0.01)  # EIO while the other end is closed: wait for it to reopen
                continue
            if dead(now):
                counters.dead_bytes += len(data)
                continue
            data = line.apply(data)
            if fd == board_fd:
                counters.to_host += len(data)
                write_all(host_fd, data)
            else:
                counters.to_board += len(data)
                write_all(board_fd, data)
        if now >= next_burst:
            next_burst = now + rng.expovariate(faults.burst_rate)
            if not dead(now):
                line.burst(faults.burst)
                counters.bursts += 1
                write_all(host_fd, line.take_garbage())
    return line


def open_board_end(path: str) -> int:
    """Open the board's pseudo-terminal (its slave path) raw and non-blocking."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


class PtyRelay:
    """The relay in a background thread of this process: ``path`` is what the host opens.
    Use as a context manager, or call :meth:`stop`."""

    def __init__(self, board_path: str, faults: RelayFaults) -> None:
        self.board_fd = open_board_end(board_path)
        self.master, self._slave, self.path = make_pty()
        os.set_blocking(self.master, False)
        self.counters = RelayCounters()
        self._stopping = False
        self.line: LineFaults | None = None

        def run() -> None:
            self.line = relay(self.board_fd, self.master, faults, stop=lambda: self._stopping,
                              counters=self.counters)

        self._thread = threading.Thread(target=run, name=f"pty-relay {self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._thread.join(timeout=2.0)
            for fd in (self.master, self._slave, self.board_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self) -> "PtyRelay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hullwatch.sim.pty_relay", description=__doc__.splitlines()[0])
    ap.add_argument("board", help="the board's pseudo-terminal path (e.g. from `hullwatch board --pty`)")
    ap.add_argument("--ber", type=float, default=0.0, help="bit-error rate, per bit (e.g. 2e-5)")
    ap.add_argument("--drop", type=float, default=0.0, help="probability per byte of losing it")
    ap.add_argument("--burst-rate", type=float, default=0.0, help="garbage bursts per second to the host")
    ap.add_argument("--burst", type=int, default=64, help="bytes per garbage burst")
    ap.add_argument("--dead-at", type=float, default=0.0, help="s after start when the line goes dead")
    ap.add_argument("--dead-for", type=float, default=0.0, help="s the line stays dead (0: never)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    faults = RelayFaults(args.ber, args.drop, args.burst_rate, args.burst, args.dead_at, args.dead_for, args.seed)
    board_fd = open_board_end(args.board)
    master, slave, path = make_pty()
    os.set_blocking(master, False)
    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *a: stopping.__setitem__(0, True))
    print(f"relaying {args.board} on {path}", flush=True)
    counters = RelayCounters()
    try:
        line = relay(board_fd, master, faults, stop=lambda: stopping[0], counters=counters)
    except KeyboardInterrupt:
        return 0
    print(f"relayed {counters.to_board} bytes to the board, {counters.to_host} to the host; "
          f"{line.flipped} bits flipped, {line.dropped} bytes dropped, {counters.bursts} bursts "
          f"({line.garbage} bytes), {counters.dead_bytes} bytes lost while dead", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
