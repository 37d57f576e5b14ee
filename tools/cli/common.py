"""Argument and output helpers shared by the capture verbs (decode, plot, replay, rerun).

python-can's logger and player share one such module. Everything that prints lives here or in a
``cmd_*`` module; the libraries they call report through callbacks.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Callable

from ..errors import InputError


def add_capture_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def check_capture_path(path: str) -> None:
    """Raise :class:`InputError` (one line, exit 2) unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such capture file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected a capture file")


class SkipReporter:
    """Counts the byte ranges a capture reader skipped and lists the first ``limit`` on stderr.

    Pass the instance as the reader's ``on_skip`` callback; :meth:`finish` prints the summary
    line and says whether the capture was damaged.
    """

    def __init__(self, path: str, limit: int = 20) -> None:
        self.path = path
        self.limit = limit
        self.ranges = 0
        self.bytes = 0

    def __call__(self, skip: Any) -> None:
        self.ranges += 1
        self.bytes += skip.length
        if self.ranges <= self.limit:
            print(f"hullwatch: {self.path}: {skip}", file=sys.stderr)

    @property
    def damaged(self) -> bool:
        return self.ranges > 0

    def finish(self) -> bool:
        """Print the damage summary (if any) on stderr; True when the capture was damaged."""
        if self.ranges:
            more = f" ({self.ranges - self.limit} not listed)" if self.ranges > self.limit else ""
            print(f"hullwatch: {self.path}: damaged capture: skipped {self.bytes} bytes in "
                  f"{self.ranges} ranges{more}", file=sys.stderr)
        return self.damaged


class ByteProgress:
    """A tqdm bar over a file's bytes on stderr, only when stderr is a terminal.

    Use as a context manager; :attr:`callback` is ``None`` when no bar is shown, else a
    ``(done_bytes, total_bytes)`` callable for the library. A ``done`` smaller than the last one
    starts a new pass (``replay --loop``).
    """

    def __init__(self, path: str, desc: str, enabled: bool = True) -> None:
        self.bar: Any = None
        self.callback: Callable[[int, int], None] | None = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc=desc,
                            file=sys.stderr, leave=False)
            self.callback = self._update

    def _update(self, done: int, total: int) -> None:
        if done < self.bar.n:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> "ByteProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM; either returns normally."""
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
