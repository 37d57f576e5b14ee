"""Argument and output helpers shared by the verbs: one vocabulary of flags and messages.

python-can's logger and player share one such module. Everything that prints lives here or in a
``cmd_*`` module; the libraries they call report through callbacks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

from ..errors import InputError
from ..units import size_text

#: bytes of a file looked at to tell a capture from another file (a packet is at most 64 kB)
SNIFF_BYTES = 1 << 20


def add_capture_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE", help="telemetry capture file (.tm)")


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def add_device_argument(p: argparse.ArgumentParser, help: str, required: bool = False,
                        aliases: tuple[str, ...] = ("--port",), **kwargs: Any) -> None:
    """The board/port/destination URL of every verb: ``--device URL``, with the older spellings
    (``--port``, replay's ``--to``) kept as aliases of the same option (``args.device``)."""
    p.add_argument("--device", *aliases, dest="device", metavar="URL", required=required, help=help, **kwargs)


@contextlib.contextmanager
def naming(flag: str) -> Iterator[None]:
    """Errors raised inside are about the value of ``flag``: the CLI puts the flag in front of
    their message (``--device serial:///dev/x: no such serial port``). The exception itself, and
    so the exit status, is unchanged."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "hullwatch_flag", None) is None:
            try:
                exc.hullwatch_flag = flag  # type: ignore[attr-defined]
            except AttributeError:  # an exception type with __slots__: keep it as it is
                pass
        raise


def plot_path_arg(text: str) -> str:
    """argparse ``type=`` for an image path: the suffix must be a format matplotlib writes
    (checked when the arguments are parsed, so a long run cannot end in an unwritable plot).
    A path without a suffix gets ``.png``."""
    root, ext = os.path.splitext(text)
    if not ext:
        return text + ".png"
    # deferred: matplotlib costs about 0.3 s to import; only a verb given an image path needs it
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if ext[1:].lower() not in formats:
        raise argparse.ArgumentTypeError(
            f"{text!r}: matplotlib cannot write {ext!r} images; use one of {', '.join('.' + f for f in formats)}")
    return text


def check_capture_path(path: str) -> None:
    """Raise :class:`InputError` (one line, exit 2) unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such capture file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected a capture file")


def check_capture_content(path: str) -> str | None:
    """Tell a capture from another file before a verb works on it.

    Returns a warning line for an empty file (a capture with no packet: nothing to do, not an
    error), else None. Raises :class:`InputError` (exit 2) when the first
    :data:`SNIFF_BYTES` bytes hold no intact packet: a text file, an image, the wrong file.
    A real capture damaged further on passes here and is reported as damaged (exit 3)."""
    # deferred: the reader loads numpy (~0.1 s); flash and board-info use this module without it
    from ..ground.capture import iter_raw_packets

    check_capture_path(path)
    size = os.path.getsize(path)
    if size == 0:
        return f"{path}: empty capture (0 bytes, no packet)"
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    for _ in iter_raw_packets(head):
        return None
    looked = "the whole file" if size <= SNIFF_BYTES else f"the first {size_text(SNIFF_BYTES)}"
    raise InputError(f"{path}: not a telemetry capture: no CCSDS/PUS packet in {looked} "
                     f"({size_text(size)}); expected a .tm file written by hullwatch run, rerun or a ground system")


def file_kept_text(path: str) -> str:
    """``soyuz-ms09-seed7.tm (29.3 MB)``: a written file with its size, for the user."""
    try:
        return f"{path} ({size_text(os.path.getsize(path))})"
    except OSError:
        return f"{path} (not written)"


def new_file_name(path: str) -> str:
    """``path`` if nothing is there, else the first free ``stem-2.ext``, ``stem-3.ext``, ..."""
    if not os.path.lexists(path):
        return path
    stem, ext = os.path.splitext(path)
    n = 2
    while os.path.lexists(f"{stem}-{n}{ext}"):
        n += 1
    return f"{stem}-{n}{ext}"


def output_path(requested: str | None, default: str, force: bool, flag: str = "--capture") -> str:
    """Where a verb writes its capture, never overwriting one silently.

    No ``requested`` name: ``default``, or the first free numbered name beside it. A requested
    name that exists is refused (InputError naming ``flag``, its size and ``--force``) unless
    ``force``."""
    if requested is None:
        return new_file_name(default)
    if os.path.isdir(requested):
        raise InputError(f"{flag} {requested}: is a directory, expected a file name")
    if os.path.lexists(requested) and not force:
        raise InputError(f"{flag} {requested}: exists ({file_kept_text(requested).rsplit('(', 1)[-1].rstrip(')')}); "
                         "give --force to overwrite it, or another name")
    return requested


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


def progress_bar(**options: Any) -> Any:
    """A tqdm progress bar on stderr; ``options`` are tqdm's (``total``, ``unit``, ``desc``...)."""
    # deferred: tqdm loads multiprocessing and logging (~10 ms); only a terminal ever shows a bar
    from tqdm import tqdm

    return tqdm(file=sys.stderr, **options)


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
            self.bar = progress_bar(total=os.path.getsize(path), unit="B", unit_scale=True, desc=desc,
                                    leave=False)
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
