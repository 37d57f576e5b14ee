"""The USB sensor board as a Device, over any pyserial URL (docs/protocol.md).

``hal.open("serial:///dev/ttyACM0")``, ``hal.open("/dev/ttyACM0")``, ``hal.open("spy:///dev/ttyACM0")``,
``hal.open("socket://bench:7000")``, ``hal.open("emuboard://")`` all land here. Opening identifies
the board (protocol version check) and reads its module, channel and valve tables: the device's
layout is the board's configuration. Options (keyword arguments of :func:`open_url`):

* ``clock``: the device clock (default a WallClock started at open); it also times reconnects.
* ``timeout_s``: response timeout per attempt (default 0.05 s).
* ``baudrate``: for real UARTs (default 115200; USB CDC ignores it).

The per-cycle methods never raise (docs/architecture.md, "Embedded style"):

* :meth:`SerialBoardDevice.read` asks for one SAMPLES (``READ_ATTEMPTS`` attempts). A failed
  cycle leaves every value and time as it was and marks it STALE. After ``LINK_LOST_AFTER``
  failed cycles, or at once when the port itself fails, the link is down: :attr:`link_up` is
  False, reads cost nothing, and every ``RECONNECT_INTERVAL_S`` (device clock) the device
  reopens the port if needed and IDENTIFYs the board; the same board id with the same
  configuration CRC brings the link back, re-sends the valve commands and runs the restore hooks.
* :meth:`SerialBoardDevice.command_valve` sends COMMAND_VALVE (``COMMAND_ATTEMPTS`` attempts); a
  command that cannot be delivered stays pending and is re-sent each cycle until it lands.
* :meth:`SerialBoardDevice.health` counts frames, CRC/COBS errors, dropped bytes, timeouts, NAKs,
  stale replies, port errors, failed cycles, link losses and reconnects.

Opening raises (hal errors, for the CLI): DeviceOpenError with a hint (no such port, permission
denied), LinkTimeout (nothing answered: "is this the board?"), ProtocolError (wrong protocol).
"""

from __future__ import annotations

import operator
import time
from typing import Any, Callable

from . import wire
from .board_link import BoardDescription, BoardLink, PortFailure
from .clock import Clock, WallClock
from .errors import DeviceOpenError, DeviceUrlError, HalError, LinkError, LinkTimeout, ProtocolError
from .interfaces import ChannelKind, Device, DeviceInfo, Frame, SampleStatus
from .ports import DEFAULT_BAUD, port_url

#: Attempts of the per-cycle READ_SAMPLES / HIL_STEP before the cycle counts as failed (each
#: waits the link's adaptive timeout, about a round trip: retries are cheap).
READ_ATTEMPTS = 3
#: Each further attempt of a per-cycle request waits this many times longer (0.5 ms, then 2 ms on a
#: fast link), up to the link's full response timeout, which the last attempt always waits.
READ_TIMEOUT_GROWTH = 4.0
#: Attempts of a COMMAND_VALVE before it is left pending for the next cycle.
COMMAND_ATTEMPTS = 2
#: Consecutive failed cycles after which the link is declared lost.
LINK_LOST_AFTER = 3
#: Interval between reconnect attempts while the link is down, s of the device clock.
RECONNECT_INTERVAL_S = 0.5
#: Attempts of the IDENTIFY that probes a reconnect (one: the interval paces the retries).
PROBE_ATTEMPTS = 1

_STALE = int(SampleStatus.STALE)
_INVALID = int(SampleStatus.INVALID)
_NO_DATA = int(SampleStatus.NO_DATA)
_HIL_ACTIVE = int(wire.BoardFlags.HIL_ACTIVE)
_AGE_NEVER = wire.AGE_NEVER
_FB_MAX = wire.FEEDBACK_SCALE
_FB_SCALE = 1.0 / _FB_MAX
_READ_SAMPLES = int(wire.MsgType.READ_SAMPLES)
_HIL_STEP = int(wire.MsgType.HIL_STEP)
_HIL_INJECT = int(wire.MsgType.HIL_INJECT)
_HIL_INJECT_REPLY = int(wire.MsgType.HIL_INJECT_REPLY)


class SerialBoardDevice(Device):
    """The board behind a pyserial URL (see the module docstring).

    Attributes besides the Device ones:
        description: the board's identity and tables as read at open.
        channel_ids: board channel ids in board order (HIL_INJECT order).
        link: the :class:`BoardLink` (None while the port is closed).
        on_restore: callables run (in order) after the link comes back; an exception in one is
            counted and makes the restore fail (the link stays down and is retried).
    """

    def __init__(self, url: str, *, clock: Clock | None = None, timeout_s: float = 0.05,
                 baudrate: int = DEFAULT_BAUD,
                 link_factory: Callable[[], BoardLink] | None = None) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._link_factory = link_factory or (lambda: BoardLink.open(url, timeout_s=timeout_s, baudrate=baudrate))
        self.link: BoardLink | None = self._link_factory()
        try:
            self.description: BoardDescription = self.link.describe()
            self.layout = self.description.layout()
        except LinkTimeout as exc:
            self.link.close()
            raise LinkTimeout(f"{url}: no board answered IDENTIFY ({exc}); is this the hullwatch "
                              "sensor board, powered and running its firmware?") from exc
        except HalError:
            self.link.close()
            raise
        ident = self.description.identity
        if not ident.flags & wire.BoardFlags.CONFIG_VALID:
            self.link.close()
            raise DeviceOpenError(f"{url}: board {ident.board_id!r} has no valid configuration image",
                                  "flash one with `hullwatch flash CONFIG.toml --port URL`")
        self.clock = clock if clock is not None else WallClock()
        self.epoch_utc = time.time() - self.clock.now()
        self.info = DeviceInfo("board", ident.board_id, {
            "url": url, "port": port_url(url), "firmware": ident.firmware_version,
            "protocol": ident.protocol_version, "generation": ident.generation,
            "config_crc32": f"{ident.config_crc32:#010x}", "active_slot": ident.active_slot,
            "sample_rate_hz": ident.sample_rate_hz,
        })
        self.channel_ids = tuple(c.id for c in self.description.channels)
        # Board channel index -> (kind, index within its kind in the layout).
        counters = {k: 0 for k in ChannelKind}
        self._map: list[tuple[int, int]] = []
        for c in self.description.channels:
            kind = ChannelKind(c.kind)
            self._map.append((int(kind), counters[kind]))
            counters[kind] += 1
        # Board channels of each kind, as a picker of a board-order column: a slice when they
        # are contiguous (the usual case), else their indices (two or more: one is a slice).
        self._pick: list[Callable[[Any], Any]] = []
        for kind in ChannelKind:
            idx = [i for i, c in enumerate(self.description.channels) if c.kind == kind]
            if not idx:
                self._pick.append(operator.itemgetter(slice(0, 0)))
            elif idx == list(range(idx[0], idx[-1] + 1)):
                self._pick.append(operator.itemgetter(slice(idx[0], idx[-1] + 1)))
            else:
                self._pick.append(operator.itemgetter(*idx))
        n_valves = len(self.layout.valves)
        self._codec = wire.SamplesCodec(len(self.description.channels), n_valves)
        self._pending: list[int | None] = [None] * n_valves  # command not yet acknowledged
        self._last_cmd: list[int | None] = [None] * n_valves  # last command sent by the host
        self._up = True
        self._failures = 0
        self._next_probe = 0.0
        self._time_offset: float | None = None
        self.on_restore: list[Callable[[], None]] = []
        self.stats = {"reads": 0, "failed_reads": 0, "commands": 0, "failed_commands": 0,
                      "link_lost": 0, "reconnects": 0, "reconnect_attempts": 0, "restore_errors": 0,
                      "internal_errors": 0, "bad_fields": 0}
        self._old_link_counters: dict[str, int] = {}
        #: the board takes HIL_STEP (protocol 1.2): a HIL cycle is one round trip
        self.one_exchange_hil = ident.protocol_minor >= wire.HIL_STEP_MINOR

    # -- the per-cycle path ------------------------------------------------------------------

    def read(self, frame: Frame) -> None:
        """Fill ``frame`` from one SAMPLES response; on any failure mark it STALE. Never raises."""
        try:
            self._read(frame)
        except Exception:  # the flight loop must never see an exception from here
            self.stats["internal_errors"] += 1
            self._mark_stale(frame)

    def _read(self, frame: Frame, msg_type: int = _READ_SAMPLES, request: bytes = b"") -> bool:
        """One per-cycle exchange whose reply has the SAMPLES layout (READ_SAMPLES, HIL_STEP
        with its payload ``request``); True when it was answered."""
        self.stats["reads"] += 1
        frame.t = self.clock.now()
        if not self._up and not self._try_restore():
            self._mark_stale(frame)
            return False
        if self._pending.count(None) != len(self._pending):
            self._flush_commands()
        try:
            link = self.link
            payload = link.exchange(msg_type, request, attempts=READ_ATTEMPTS,  # type: ignore[union-attr]
                                    timeout_s=link.adaptive_timeout(),  # type: ignore[union-attr]
                                    growth=READ_TIMEOUT_GROWTH)
            columns = self._codec.unpack(payload)
        except PortFailure:
            self.stats["failed_reads"] += 1
            self._lose(close=True)
            self._mark_stale(frame)
            return False
        except LinkError:
            self.stats["failed_reads"] += 1
            self._failures += 1
            if self._failures >= LINK_LOST_AFTER:
                self._lose(close=False)
            self._mark_stale(frame)
            return False
        self._failures = 0
        self._fill(frame, columns)
        return True

    def _fill(self, frame: Frame, columns: tuple) -> None:
        board_us, flags, _raw, value, age, status, commanded, feedback, v_status = columns
        if (status and max(status) > _NO_DATA) or (v_status and (
                max(v_status) > _NO_DATA or max(feedback) > _FB_MAX)):
            status, feedback, v_status = self._sanitise(status, feedback, v_status)
        board_s = board_us * 1e-6
        if flags & _HIL_ACTIVE:
            offset = 0.0  # in HIL the board time is the stimulus (mission) time
        else:
            if self._time_offset is None:
                self._time_offset = frame.t - board_s
            offset = self._time_offset
        base = board_s + offset
        a0 = age[0] if age else 0
        if age.count(a0) == len(age):
            times = [base - a0 * 1e-6] * len(age)  # one conversion time (a HIL cycle, a sample tick)
        else:
            times = [base - a * 1e-6 for a in age]
        pressure, temperature, flow = self._pick
        frame.pressure[:] = pressure(value)
        frame.pressure_status[:] = pressure(status)
        frame.pressure_time[:] = pressure(times)
        frame.temperature[:] = temperature(value)
        frame.temperature_status[:] = temperature(status)
        frame.temperature_time[:] = temperature(times)
        frame.flow[:] = flow(value)
        frame.flow_status[:] = flow(status)
        frame.flow_time[:] = flow(times)
        if _AGE_NEVER in age:
            # Never sampled: keep the frame's time, report NO_DATA (values are meaningless).
            for i, a in enumerate(age):
                if a == _AGE_NEVER:
                    kind, j = self._map[i]
                    (frame.pressure_time, frame.temperature_time, frame.flow_time)[kind][j] = 0.0
                    (frame.pressure_status, frame.temperature_status, frame.flow_status)[kind][j] = _NO_DATA
        fb = [x * _FB_SCALE for x in feedback]
        frame.valve_fb[:] = fb
        frame.valve_status[:] = v_status
        # NONE (or junk) commanded: the position says it.
        frame.valve_cmd[:] = commanded if not commanded or max(commanded) <= 1 else \
            [c if c <= 1 else (1 if f >= 0.5 else 0) for c, f in zip(commanded, fb)]

    def _sanitise(self, status: tuple, feedback: tuple, v_status: tuple) -> tuple[list, list, list]:
        """A board's per-cycle lies made harmless: a status byte outside SampleState reads
        INVALID, a valve feedback above FEEDBACK_SCALE reads INVALID at fully open (counted in
        ``bad_fields``)."""
        self.stats["bad_fields"] += 1
        status = [s if s <= _NO_DATA else _INVALID for s in status]
        v_status = [s if s <= _NO_DATA else _INVALID for s in v_status]
        v_status = [_INVALID if f > wire.FEEDBACK_SCALE else s for s, f in zip(v_status, feedback)]
        feedback = [min(f, wire.FEEDBACK_SCALE) for f in feedback]
        return status, feedback, v_status

    def _mark_stale(self, frame: Frame) -> None:
        for st in (frame.pressure_status, frame.temperature_status, frame.flow_status, frame.valve_status):
            for i, x in enumerate(st):
                if x != _NO_DATA:
                    st[i] = _STALE

    def command_valve(self, index: int, open_: bool) -> None:
        """Command valve ``index`` (layout order). Never raises; undelivered commands stay
        pending and are re-sent every cycle until the board acknowledges them."""
        try:
            if not 0 <= index < len(self._pending):
                self.stats["failed_commands"] += 1
                return
            self.stats["commands"] += 1
            cmd = 1 if open_ else 0
            self._last_cmd[index] = cmd
            self._pending[index] = cmd
            if self._up:
                self._flush_commands()
        except Exception:
            self.stats["internal_errors"] += 1

    def _flush_commands(self) -> None:
        for i, cmd in enumerate(self._pending):
            if cmd is None:
                continue
            try:
                self.link.request(wire.CommandValve(i, cmd), attempts=COMMAND_ATTEMPTS)  # type: ignore[union-attr]
                self._pending[i] = None
            except PortFailure:
                self.stats["failed_commands"] += 1
                self._lose(close=True)
                return
            except LinkError:
                # NAK or no answer: leave it pending; the next cycle tries again.
                self.stats["failed_commands"] += 1
                return

    # -- link loss and restore ---------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        return self._up

    def _lose(self, close: bool) -> None:
        if self._up:
            self._up = False
            self.stats["link_lost"] += 1
        self._failures = 0
        self._next_probe = self.clock.now() + RECONNECT_INTERVAL_S
        if close and self.link is not None:
            self._old_link_counters = _add(self._old_link_counters, self.link.counters())
            self.link.close()
            self.link = None

    def _try_restore(self) -> bool:
        now = self.clock.now()
        if now < self._next_probe:
            return False
        self._next_probe = now + RECONNECT_INTERVAL_S
        self.stats["reconnect_attempts"] += 1
        try:
            if self.link is None:
                self.link = self._link_factory()
            ident = self.link.identify(attempts=PROBE_ATTEMPTS)
            expected = self.description.identity
            if ident.board_id != expected.board_id or ident.config_crc32 != expected.config_crc32:
                # Another board, or the same board with another configuration: the layout the
                # flight software runs on would be wrong. Stay down.
                self.stats["restore_errors"] += 1
                return False
            self._time_offset = None
            for i, cmd in enumerate(self._last_cmd):
                if cmd is not None:
                    self._pending[i] = cmd
            for hook in self.on_restore:
                hook()
        except PortFailure:
            self._lose(close=True)
            return False
        except (HalError, OSError):
            if self.link is not None and not self.link.is_open:
                self.link = None
            return False
        except Exception:
            self.stats["restore_errors"] += 1
            return False
        self._up = True
        self._failures = 0
        self.stats["reconnects"] += 1
        return True

    # -- HIL (used by the hardware-in-the-loop device of the tools) --------------------------------------------

    def hil_enter(self, enable: bool = True) -> None:
        """Enter (or leave) HIL mode. Raises NakError (HIL_NOT_ALLOWED...), ProtocolError when
        the reply's ``active`` is not what was asked, or another LinkError."""
        if self.link is None:
            raise PortFailure(f"{self.url}: link is down")
        want = 1 if enable else 0
        reply = self.link.request(wire.HilEnter(want))
        if reply.active != want:
            raise ProtocolError(f"{self.url}: board answered HIL_ENTER {want} with active = "
                                f"{reply.active}: it is {'not ' if want else 'still '}in HIL mode")

    def hil_inject(self, t: float, values: tuple[float, ...] | list[float],
                   valve_positions: tuple[float, ...] | list[float] | None = None) -> bool:
        """Stimulate every board channel (board order, SI units, NaN = none) at mission time
        ``t`` (s), and with ``valve_positions`` every valve's position sensor (layout order,
        0..1, NaN = none; only sent to a board of protocol 1.1 or later, see
        wire.VALVE_STIMULUS_MINOR). Returns False when the stimulus did not reach the board.
        Never raises."""
        if not self._up or self.link is None:
            return False
        try:
            feedback = None
            if valve_positions is not None and \
                    self.description.identity.protocol_minor >= wire.VALVE_STIMULUS_MINOR:
                feedback = wire.feedback_counts(valve_positions)
            # The per-cycle path: the payload packed straight from the columns (no message).
            reply = self.link.exchange(_HIL_INJECT, wire.inject_payload(round(t * 1e6), 0, values, feedback),
                                       attempts=READ_ATTEMPTS)
            wire.decode(_HIL_INJECT_REPLY, reply)  # a malformed reply is a ProtocolError
            return True
        except PortFailure:
            self._lose(close=True)
        except LinkError:
            pass
        except Exception:
            self.stats["internal_errors"] += 1
        return False


    def hil_step(self, t: float, values: tuple[float, ...] | list[float],
                 valve_positions: tuple[float, ...] | list[float] | None, frame: Frame) -> bool:
        """One HIL cycle: stimulate every board channel (and valve position sensor) as
        :meth:`hil_inject` does, and read the board back into ``frame`` as :meth:`read` does.
        One HIL_STEP exchange on a board of protocol 1.2 or later, else HIL_INJECT then
        READ_SAMPLES. Returns False when the stimulus did not reach the board (the frame is then
        STALE as after a failed read). Never raises."""
        if not self.one_exchange_hil:
            ok = self.hil_inject(t, values, valve_positions)
            self.read(frame)
            return ok
        try:
            feedback = None if valve_positions is None else wire.feedback_counts(valve_positions)
            return self._read(frame, _HIL_STEP, wire.inject_payload(round(t * 1e6), 0, values, feedback))
        except Exception:  # the flight loop must never see an exception from here
            self.stats["internal_errors"] += 1
            self._mark_stale(frame)
            return False

    # -- housekeeping ------------------------------------------------------------------------

    def health(self) -> dict[str, int]:
        link = self.link.counters() if self.link is not None else {}
        return {**_add(self._old_link_counters, link), **self.stats}

    def _close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def open_url(url: str, **options: Any) -> SerialBoardDevice:
    """Open the board behind ``url`` (any pyserial URL, ``serial://PATH`` or a bare path).

    Raises DeviceOpenError (with hint), DeviceUrlError, LinkTimeout, ProtocolError.
    """
    allowed = {"clock", "timeout_s", "baudrate", "link_factory"}
    unknown = set(options) - allowed
    if unknown:
        raise DeviceUrlError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}; expected "
                             + ", ".join(sorted(allowed)))
    return SerialBoardDevice(url, **options)


__all__ = ["SerialBoardDevice", "open_url", "READ_ATTEMPTS", "COMMAND_ATTEMPTS", "LINK_LOST_AFTER",
           "RECONNECT_INTERVAL_S"]
