"""pyserial URL handler ``emuboard://``: the board emulator, in process, behind a serial port.

URL grammar::

    emuboard://[NAME][?option=value&...]

    NAME            a board name. Opening the same name again in this process reaches the same
                    board (it stays powered while the host closes and reopens its port, as a USB
                    board does); without a name every open makes a fresh board.
    flash=FILE      keep the configuration flash in FILE (made with the factory image if missing)
    board_id=ID     the board's id (default hwb-emu-0001)
    scenario=NAME   factory image and valve travel times for this scenario's station
                    (default soyuz-ms09); only used when the flash is made
    hil=0           factory image with HIL not allowed
    key=FILE        the board holds the HMAC key in FILE (docs/config-image.md, "Key files");
                    only used when the flash is made
    protocol=1.N    the protocol version the board speaks (default this build's, 1.2; ``1.1``
                    emulates a board without HIL_STEP, ``1.0`` one without HIL valve-feedback
                    stimulation either)
    noise=P         probability per byte (both directions) of a flipped bit
    drop=P          probability per byte (both directions) of a lost byte
    seed=N          seed of the line-fault generator (default 0)

Examples::

    serial.serial_for_url("emuboard://")                      # fresh board, flash in RAM
    hal.open("emuboard://bench?flash=/tmp/board.flash")         # the serial device, real bytes
    serial.serial_for_url("emuboard://noisy?noise=1e-4&drop=1e-4")

The board answers synchronously inside ``write`` (the answer waits in the input buffer), so the
real serial device runs byte for byte against the emulator at in-process speed. Line faults can
also be driven by tests through :func:`link` (``link("noisy").faults.burst(200)``,
``.unplug()``, ``.plug()``, ``.unplug_until(t, clock)``).

The handler is registered in the ``hullwatch.serial_handlers`` entry-point group (pyproject.toml);
hullwatch.hal.registry adds its package to pyserial's ``protocol_handler_packages``.
"""

from __future__ import annotations

import math
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from ...hal.keyfile import read_key_file
from ...hal.errors import HalError
from ...hal.wire import PROTOCOL_MAJOR, PROTOCOL_MINOR
from ..board_emulator import BoardEmulator, hardware_for_scenario, open_flash
from ..board_factory import DEFAULT_BOARD_ID, config_for_scenario
from ..errors import SimError
from ..scenario import load_scenario

_BOARDS: dict[str, "EmulatedLink"] = {}
_LOCK = threading.Lock()


@dataclass
class LineFaults:
    """Faults of the line between host and board (applied to bytes in both directions).

    ``noise``/``drop``: per-byte probabilities of a flipped bit / a lost byte. :meth:`burst`
    queues garbage for the host. :meth:`unplug` makes the port vanish (reads, writes and opens
    fail as for a USB cable pulled) until :meth:`plug`, or until ``clock() >= t`` with
    :meth:`unplug_until`. Counters say what was done.
    """

    noise: float = 0.0
    drop: float = 0.0
    seed: int = 0
    flipped: int = 0
    dropped: int = 0
    garbage: int = 0
    unplugs: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _pending_garbage: bytearray = field(default_factory=bytearray, repr=False)
    _unplugged: bool = False
    _until: float | None = None
    _clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def apply(self, data: bytes) -> bytes:
        if not data or (self.noise <= 0 and self.drop <= 0):
            return data
        rng = self._rng
        n = len(data)
        # Draw the number of faults, not one random number per byte: cheap at low rates.
        out = None
        for p, kind in ((self.noise, "flip"), (self.drop, "drop")):
            if p <= 0:
                continue
            k = _binomial(rng, n, p)
            if not k:
                continue
            if out is None:
                out = bytearray(data)
            for _ in range(k):
                if not out:
                    break
                i = rng.randrange(len(out))
                if kind == "flip":
                    out[i] ^= 1 << rng.randrange(8)
                    self.flipped += 1
                else:
                    del out[i]
                    self.dropped += 1
        return data if out is None else bytes(out)

    def burst(self, n: int) -> None:
        """Queue ``n`` random bytes (zeros included) for the host to read."""
        self._pending_garbage += bytes(self._rng.randrange(256) for _ in range(n))
        self.garbage += n

    def take_garbage(self) -> bytes:
        data = bytes(self._pending_garbage)
        self._pending_garbage.clear()
        return data

    def unplug(self) -> None:
        self._unplugged = True
        self._until = None
        self.unplugs += 1

    def unplug_until(self, t: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Unplugged until ``clock()`` reaches ``t`` (any clock: a test's mission clock works)."""
        self.unplug()
        self._until = t
        self._clock = clock

    def plug(self) -> None:
        self._unplugged = False
        self._until = None

    @property
    def unplugged(self) -> bool:
        if self._unplugged and self._until is not None and self._clock() >= self._until:
            self.plug()
        return self._unplugged


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if p >= 1:
        return n
    if n * p < 30:
        # Poisson approximation by inversion: fine for the rare faults this is for.
        L = math.exp(-n * p)
        k, prod = 0, rng.random()
        while prod > L:
            k += 1
            prod *= rng.random()
        return min(k, n)
    return sum(1 for _ in range(n) if rng.random() < p)


class EmulatedLink:
    """A board and the line to it; shared by every port opened on the same name."""

    def __init__(self, board: BoardEmulator, faults: LineFaults) -> None:
        self.board = board
        self.faults = faults


def link(name: str) -> EmulatedLink:
    """The board and line of ``emuboard://NAME`` (KeyError if it was never opened)."""
    return _BOARDS[name]


def forget(name: str) -> None:
    """Drop a named board (its flash file stays); the next open powers up a new one."""
    with _LOCK:
        board = _BOARDS.pop(name, None)
    if board is not None:
        board.board.flash.close()


def _make_link(options: dict[str, str]) -> EmulatedLink:
    board_id = options.get("board_id", DEFAULT_BOARD_ID)
    try:
        scenario = load_scenario(options.get("scenario", "soyuz-ms09"))
        hil = options.get("hil", "1") not in ("0", "false", "no")
        config = config_for_scenario(scenario, board_id, hil_allowed=hil)
        key = read_key_file(options["key"]) if "key" in options else None
        flash = open_flash(options.get("flash"), board_id=board_id, config=config, key=key)
        faults = LineFaults(noise=float(options.get("noise", 0)), drop=float(options.get("drop", 0)),
                            seed=int(options.get("seed", 0)))
        minor = _protocol_minor(options.get("protocol"))
    except (SimError, HalError, ValueError, OSError) as exc:
        raise SerialException(f"emuboard: {exc}") from exc
    board = BoardEmulator(flash, protocol_minor=minor, **hardware_for_scenario(scenario))
    return EmulatedLink(board, faults)


def _protocol_minor(text: str | None) -> int:
    """The minor of a ``protocol=1.N`` option (this build's when absent). Raises ValueError."""
    if text is None:
        return PROTOCOL_MINOR
    major, _, minor = text.partition(".")
    if major != str(PROTOCOL_MAJOR) or not minor.isdigit() or int(minor) > PROTOCOL_MINOR:
        raise ValueError(f"protocol={text!r}: expected {PROTOCOL_MAJOR}.0 .. {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")
    return int(minor)


_OPTIONS = {"flash", "board_id", "scenario", "hil", "noise", "drop", "seed", "protocol", "key"}


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """(name, options) of an ``emuboard://`` URL. Raises SerialException naming a bad option."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "emuboard":
        raise SerialException(f"expected an emuboard:// URL, got {url!r}")
    options = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _OPTIONS:
            raise SerialException(f"emuboard: unknown option {key!r} in {url!r}; expected one of "
                                  + ", ".join(sorted(_OPTIONS)))
        options[key] = values[-1]
    return parts.netloc + parts.path.rstrip("/"), options


class Serial(SerialBase):
    """A serial port whose other end is an emulated board."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._link: EmulatedLink | None = None
        self._rx = bytearray()
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        name, options = parse_url(self._port)
        if name:
            with _LOCK:
                existing = _BOARDS.get(name)
                if existing is None:
                    existing = _BOARDS[name] = _make_link(options)
            self._link = existing
        else:
            self._link = _make_link(options)
        if self._link.faults.unplugged:
            self._link = None
            raise SerialException(2, f"could not open port {self._port}: [Errno 2] No such file or directory")
        self._rx.clear()
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self._link = None
        super().close()

    def _reconfigure_port(self) -> None:
        pass

    @property
    def board(self) -> BoardEmulator:
        """The emulated board behind this port."""
        if self._link is None:
            raise PortNotOpenError()
        return self._link.board

    @property
    def faults(self) -> LineFaults:
        if self._link is None:
            raise PortNotOpenError()
        return self._link.faults

    def _check(self) -> EmulatedLink:
        lk = self._link
        if lk is None or not self.is_open:
            raise PortNotOpenError()
        faults = lk.faults
        if faults._unplugged and faults.unplugged:  # per read: the property only when unplugged
            raise SerialException("device reports readiness to read but returned no data "
                                  "(device disconnected or multiple access on port?)")
        return lk

    def _pull(self, lk: EmulatedLink) -> None:
        if lk.faults._pending_garbage:
            self._rx += lk.faults.take_garbage()
        out = lk.board.poll()
        if out:
            self._rx += lk.faults.apply(out)

    @property
    def in_waiting(self) -> int:
        lk = self._check()
        self._pull(lk)
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        lk = self._check()
        rx = self._rx
        # Bytes already waiting (the host read in_waiting first) are answered without a pull:
        # what it would add comes after them and waits for the next read.
        if len(rx) < size:
            self._pull(lk)
            if not rx and self._timeout != 0:
                # Only stream frames can still arrive: wait for them up to the timeout.
                deadline = None if self._timeout is None else time.monotonic() + self._timeout
                while not rx:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    time.sleep(0.001 if remaining is None else min(0.001, remaining))
                    lk = self._check()
                    self._pull(lk)
        if len(rx) <= size:
            data = bytes(rx)
            rx.clear()
        else:
            data = bytes(rx[:size])
            del rx[:size]
        return data

    def write(self, data: bytes) -> int:
        lk = self._check()
        data = bytes(data)
        reply = lk.board.receive(lk.faults.apply(data))
        if reply:
            self._rx += lk.faults.apply(reply)
        return len(data)

    def reset_input_buffer(self) -> None:
        self._check()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._check()

    @property
    def out_waiting(self) -> int:
        return 0

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
