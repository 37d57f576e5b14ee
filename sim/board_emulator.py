"""The USB sensor board, emulated: the board side of the wire protocol (docs/protocol.md).

:class:`BoardEmulator` is transport-free: :meth:`BoardEmulator.receive` takes the bytes the host
sent and returns the bytes the board answers; :meth:`BoardEmulator.poll` returns stream frames
that have come due. Two transports carry it: the in-process pyserial URL handler
``emuboard://`` (``hullwatch.sim.urlhandler.protocol_emuboard``), and :func:`serve_fd` /
:func:`serve_port`, which serve a pseudo-terminal or any pyserial port (``hullwatch board``).

What it models:

- configuration flash in a file (:mod:`hullwatch.sim.board_flash`; survives restarts), booted
  at power-on; every FLASH_* request is delegated to it and its refusals become NAKs;
- sensor channels with the active image's calibration (:mod:`hullwatch.sim.board_channels`): a
  physical value becomes 24-bit ADC counts by the inverse calibration (rounded, clamped) and
  counts become the reported value, so quantisation and saturation are real; out of the valid
  range reads INVALID;
- without HIL, quiet nominal inputs (101325 Pa, 295 K, no flow) converted at the configured
  sample rate on the board's own clock; in HIL mode the host's HIL_INJECT values, stamped with
  the stimulus time, which becomes the board time (lockstep with the host's plant);
- valves (:mod:`hullwatch.sim.board_valves`) that travel at a finite speed toward their
  command, with position feedback; in HIL mode
  a valve's position sensor can be stimulated too (HIL_INJECT's valve block, protocol 1.1): the
  board then reports the stimulated position (the plant's valve, with its faults) instead of its
  own actuator model, until released or HIL ends;
- HIL refused unless the active configuration allows it;
- a bounded receive buffer: garbage, bad CRCs and oversized frames are dropped and counted;
  no request, however malformed, raises out of :meth:`receive` (it NAKs instead).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..hal import wire
from ..hal.config_model import BoardConfig, ChannelConfig
from ..hal.framing import MAX_WIRE_FRAME, FrameReader, encode_frame
from ..hal.wire_types import MAX_STIMULUS_US
from ..hal.wire import (
    FEEDBACK_SCALE,
    NO_MODULE,
    NO_SLOT,
    BoardFlags,
    MsgType,
    NakCode,
    ValveCommand,
)
# The channels and valves, and the transports (pseudo-terminal, pyserial port), live in modules
# of their own; their public names are re-exported here.
from .board_channels import NOMINAL_INPUT, ChannelBank  # noqa: F401 - re-exported
from .board_factory import DEFAULT_BOARD_ID, default_factory_config
from .board_flash import BoardFlash, FlashRefused, file_size
from .board_serve import Pacer, PtyBoard, make_pty, serve_fd, serve_port  # noqa: F401 - re-exported
from .board_storage import FlashFileError, MemoryStorage
from .board_valves import TRAVEL_FRACTION, Valve, ValveBank  # noqa: F401 - re-exported
from .errors import SimError

FIRMWARE_VERSION = (1, 0, 0)
#: Largest received frame the board accepts (wire bytes, delimiter included): the documented
#: limit. Longer frames, and frames that decode to a payload over MAX_PAYLOAD, are dropped and
#: counted (docs/protocol.md, "Framing").
RX_FRAME_LIMIT = MAX_WIRE_FRAME
#: Most stream frames one :meth:`BoardEmulator.poll` produces (a host that stalls gets the latest).
STREAM_BURST = 4


_RELEASE = wire.FEEDBACK_RELEASE
_HIL_STEP = int(MsgType.HIL_STEP)
_HIL_STEP_REPLY = int(MsgType.HIL_STEP_REPLY)
#: a HIL_INJECT's or HIL_STEP's fields (wire.inject_fields): time_us, first, values, valve_first,
#: feedback (None without a valve block)
_Stimulus = tuple[int, int, tuple[float, ...], int, "tuple[int, ...] | None"]
_VALVE_STIMULUS_MINOR = wire.VALVE_STIMULUS_MINOR
_CONFIG_VALID = int(BoardFlags.CONFIG_VALID)
_HIL_ALLOWED = int(BoardFlags.HIL_ALLOWED)
_HIL_ACTIVE = int(BoardFlags.HIL_ACTIVE)
_STREAMING = int(BoardFlags.STREAMING)
_KEY_PRESENT = int(BoardFlags.KEY_PRESENT)
_FLASH_WRITING = int(BoardFlags.FLASH_WRITING)


class EmulatorError(SimError):
    """The emulator cannot start (bad flash file, bad option)."""


class BoardEmulator:
    """The board. ``flash`` holds its configuration; ``clock`` gives seconds (its own time
    outside HIL mode).

    Args:
        flash: the board's configuration flash (see :func:`open_flash`).
        clock: monotonic seconds; the board time is measured from construction.
        valve_travel_s: full-stroke travel time per valve id (default: TRAVEL_FRACTION of the
            valve's actuation timeout).
        initial_open: valve ids whose valves are open at power-on (default: every hatch and
            valve open, repress valves closed: the normal state of a station).
        protocol_minor: the protocol minor the board speaks (default this build's); 0 emulates a
            protocol 1.0 board, which refuses HIL_INJECT's valve block with BAD_LENGTH.
    """

    def __init__(
        self,
        flash: BoardFlash,
        *,
        clock: Callable[[], float] = time.monotonic,
        valve_travel_s: dict[str, float] | None = None,
        initial_open: set[str] | None = None,
        protocol_minor: int = wire.PROTOCOL_MINOR,
    ) -> None:
        self.flash = flash
        self.protocol_minor = protocol_minor
        self._clock = clock
        self._valve_travel_s = dict(valve_travel_s or {})
        self._initial_open = initial_open
        self.counters: dict[str, int] = {
            "requests": 0, "naks": 0, "unexpected_frames": 0, "internal_errors": 0,
            "stream_frames": 0, "boots": 0, "version_naks": 0,
        }
        # The protocol major of the host's latest IDENTIFY (None: none yet, or lost at a BOOT
        # reset). A major this board cannot serve makes it NAK everything but IDENTIFY.
        self.host_major: int | None = None
        self._reader = FrameReader(max_wire_frame=RX_FRAME_LIMIT)
        self._handlers: dict[int, Callable[[Any], Any]] = {
            MsgType.IDENTIFY: self._identify,
            MsgType.PING: lambda m: wire.PingReply(m.data),
            MsgType.RESET: self._reset,
            MsgType.DESCRIBE_MODULE: self._describe_module,
            MsgType.DESCRIBE_CHANNEL: self._describe_channel,
            MsgType.DESCRIBE_VALVE: self._describe_valve,
            MsgType.READ_SAMPLES: self._read_samples,
            MsgType.STREAM_SAMPLES: self._stream,
            MsgType.COMMAND_VALVE: self._command_valve,
            MsgType.READ_VALVES: self._read_valves,
            MsgType.FLASH_INFO: self._flash_info,
            MsgType.FLASH_BEGIN: self._flash_begin,
            MsgType.FLASH_WRITE: self._flash_write,
            MsgType.FLASH_READ: self._flash_read,
            MsgType.FLASH_CRC: self._flash_crc,
            MsgType.FLASH_COMMIT: self._flash_commit,
            MsgType.FLASH_ABORT: self._flash_abort,
            MsgType.HIL_ENTER: self._hil_enter,
            MsgType.HIL_INJECT: self._hil_inject,
            MsgType.HIL_STEP: self._hil_step,
        }
        # The request each handler gets: the message dataclass (wire.decode), except for the
        # per-cycle stimuli, whose handlers take the payload's fields (wire.inject_fields).
        self._decoders: dict[int, Callable[[bytes], Any]] = {
            MsgType.HIL_INJECT: wire.inject_fields,
            MsgType.HIL_STEP: lambda payload: wire.inject_fields(payload, _HIL_STEP),
        }
        self._boot(power_on=True)

    # -- state ------------------------------------------------------------------------------

    def _boot(self, power_on: bool, deenergise: bool = False) -> None:
        """Load the active configuration; reset HIL and streaming. Valves: at the first
        power-on they stand as the rig left them (``initial_open``); ``deenergise`` (a BOOT
        reset, a power cycle) drops every valve driver, so each valve keeps its position and
        travels to closed, commanded NONE; otherwise (soft reset, commit) they are kept."""
        self.counters["boots"] += 1
        self._t0 = self._clock()
        self._hil = False
        self._hil_time_us = 0
        self._stream_rate = 0
        self._stream_seq = 0
        self._stream_due_us = 0
        self._last_conversion = -1
        self.config: BoardConfig | None = self.flash.config
        cfg = self.config
        previous = None if power_on and not deenergise else self._valves.valves
        self.channels: list[ChannelConfig] = list(cfg.channels) if cfg else []
        self._channels = ChannelBank(self.channels)
        self._module_index = {m.name: i for i, m in enumerate(cfg.modules)} if cfg else {}
        self._valves = ValveBank(cfg.valves if cfg else (), travel_s=self._valve_travel_s,
                                 previous=previous, keep=not power_on,
                                 initial_open=self._initial_open, time_us=self.board_time_us())
        self._codec = wire.SamplesCodec(len(self.channels), len(self._valves))

    @property
    def valves(self) -> list[Valve]:
        """The valve drivers, in board order."""
        return self._valves.valves

    def board_time_us(self) -> int:
        """Board time in microseconds: the latest stimulus time in HIL mode, else since boot."""
        if self._hil:
            return self._hil_time_us
        return int((self._clock() - self._t0) * 1e6)

    @property
    def hil_active(self) -> bool:
        return self._hil

    @property
    def stream_rate_hz(self) -> int:
        """The STREAM_FRAME rate in Hz, 0 when not streaming."""
        return self._stream_rate

    def flags(self) -> int:
        """BoardFlags as a plain int (per cycle: no enum arithmetic)."""
        f = 0
        if self.config is not None:
            f = _CONFIG_VALID | _HIL_ALLOWED if self.config.hil_allowed else _CONFIG_VALID
        if self._hil:
            f |= _HIL_ACTIVE
        if self._stream_rate:
            f |= _STREAMING
        if self.flash.key_held:
            f |= _KEY_PRESENT
        if self.flash.writing:
            f |= _FLASH_WRITING
        return f

    def power_cycle(self) -> None:
        """As a power cut and restart: the flash is booted again, everything else is lost."""
        self._reader.reset()
        self._valves.advance(self.board_time_us())
        self.host_major = None
        self._boot(power_on=True, deenergise=True)

    # -- bytes in, bytes out ----------------------------------------------------------------

    def receive(self, data: bytes) -> bytes:
        """Process bytes from the host; return the bytes to send back (possibly empty).

        Never raises (except BaseExceptions such as board_flash.PowerCut, which model the power
        failing): bad frames are dropped and counted, bad requests get a NAK.
        """
        out: list[bytes] = []
        for frame in self._reader.feed(data):
            if frame.type & 0x80:
                # A response type sent to the board (an echoing line, a confused host): ignore.
                self.counters["unexpected_frames"] += 1
                continue
            out.append(self._dispatch(frame.type, frame.seq, frame.payload))
        return b"".join(out)

    def _dispatch(self, msg_type: int, seq: int, payload: bytes) -> bytes:
        self.counters["requests"] += 1
        if self.host_major is not None and self.host_major != wire.PROTOCOL_MAJOR \
                and msg_type != MsgType.IDENTIFY:
            # docs/protocol.md, "Version negotiation": a board that cannot serve the host's
            # major NAKs every other request with VERSION until an IDENTIFY of a major it serves.
            self.counters["version_naks"] += 1
            return self._nak(seq, msg_type, NakCode.VERSION,
                             f"host protocol {self.host_major}.x is not served by this board "
                             f"(protocol {wire.PROTOCOL_MAJOR}.{self.protocol_minor}); IDENTIFY "
                             f"as {wire.PROTOCOL_MAJOR}.x")
        handler = self._handlers.get(msg_type)
        if handler is None:
            return self._nak(seq, msg_type, NakCode.UNKNOWN_TYPE, f"unknown message type {msg_type:#04x}")
        try:
            decoder = self._decoders.get(msg_type)
            request = wire.decode(msg_type, payload) if decoder is None else decoder(payload)
        except Exception as exc:  # ProtocolError, or anything a malformed payload provokes
            return self._nak(seq, msg_type, NakCode.BAD_LENGTH, str(exc)[:200])
        try:
            reply = handler(request)
            # Encoding is inside the guard too: a reply that cannot be built (a firmware fault)
            # is answered INTERNAL instead of taking the board down.
            if isinstance(reply, _RawReply):
                return encode_frame(reply.type, seq, reply.payload)
            return wire.encode(reply, seq)
        except _Refuse as exc:
            return self._nak(seq, msg_type, exc.code, exc.text)
        except FlashRefused as exc:
            return self._nak(seq, msg_type, exc.nak_code, exc.reason)
        except Exception as exc:  # a firmware fault: answer, count, keep running
            self.counters["internal_errors"] += 1
            return self._nak(seq, msg_type, NakCode.INTERNAL, f"{type(exc).__name__}: {exc}"[:200])

    def _nak(self, seq: int, request_type: int, code: int, text: str) -> bytes:
        self.counters["naks"] += 1
        return wire.encode(wire.Nak(int(code), request_type, text.encode("utf-8")[:200].decode("utf-8", "ignore")), seq)

    def poll(self) -> bytes:
        """Stream frames that have come due (empty unless streaming)."""
        if not self._stream_rate or self.config is None:
            return b""
        now = self.board_time_us()
        if now < self._stream_due_us:
            return b""
        period = int(1e6 / self._stream_rate)
        frames = []
        while now >= self._stream_due_us and len(frames) < STREAM_BURST:
            self._stream_due_us += period
            try:
                frames.append(encode_frame(MsgType.STREAM_FRAME, self._stream_seq, self._samples_payload()))
            except Exception:  # a firmware fault: count it, stop streaming, keep serving requests
                self.counters["internal_errors"] += 1
                self._stream_rate = 0
                break
            self._stream_seq = (self._stream_seq + 1) & 0xFF
            self.counters["stream_frames"] += 1
        if now >= self._stream_due_us:
            self._stream_due_us = now + period  # fell behind: skip rather than flood
        return b"".join(frames)

    def rx_counters(self) -> dict[str, int]:
        """Framing counters of the board's receiver (dropped bytes, CRC errors, oversized...)."""
        return self._reader.counters()

    # -- sampling ---------------------------------------------------------------------------

    def _sample_real_inputs(self) -> None:
        """Outside HIL: convert the nominal inputs at every sample period that has passed."""
        rate = self.config.sample_rate_hz if self.config else 1
        t_us = self.board_time_us()
        n = t_us * rate // 1_000_000
        if n == self._last_conversion:
            return
        self._last_conversion = n
        at = n * 1_000_000 // rate
        channels = self._channels
        channels.convert(channels.nominal, 0, at)

    def _samples_payload(self) -> bytes:
        """SAMPLES / STREAM_FRAME payload of the latest conversions; marks them reported."""
        if not self._hil:
            self._sample_real_inputs()
        now = self.board_time_us()
        valves = self._valves
        valves.advance(now)
        channels = self._channels
        age, status = channels.report(now)
        return self._codec.pack(now, self.flags(), channels.raw, channels.value, age, status,
                                valves.commanded(), valves.feedback(), valves.status)

    # -- request handlers (each returns the reply message or raises _Refuse/FlashRefused) -----

    def _require_config(self) -> BoardConfig:
        if self.config is None:
            raise _Refuse(NakCode.NO_CONFIG, "no valid configuration image; flash one first")
        return self.config

    def _identify(self, m: wire.Identify) -> wire.IdentifyReply:
        self.host_major = m.host_major
        info = self.flash.info()
        cfg = self.config
        return wire.IdentifyReply(
            protocol_major=wire.PROTOCOL_MAJOR, protocol_minor=self.protocol_minor,
            fw_major=FIRMWARE_VERSION[0], fw_minor=FIRMWARE_VERSION[1], fw_patch=FIRMWARE_VERSION[2],
            board_id=self.flash.board_id,
            module_count=len(cfg.modules) if cfg else 0,
            channel_count=len(self.channels), valve_count=len(self.valves),
            slot_count=2, slot_size=info.slot_size, block_size=info.max_block,
            max_payload=wire.MAX_PAYLOAD,
            active_slot=NO_SLOT if info.active_slot is None else info.active_slot,
            generation=info.generation, config_crc32=info.crc32, flags=self.flags(),
            sample_rate_hz=cfg.sample_rate_hz if cfg else 0,
        )

    def _reset(self, m: wire.Reset) -> wire.ResetReply:
        if m.kind not in (wire.ResetKind.SOFT, wire.ResetKind.BOOT):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"reset kind {m.kind}; expected 0 (soft) or 1 (boot)")
        self.flash.abort()
        # The reply goes out before the reset takes effect (it is already encoded by then).
        self._valves.advance(self.board_time_us())  # where the valves stand at the reset
        if m.kind == wire.ResetKind.BOOT:
            self.host_major = None  # all state is lost, the host's version included
            self._boot(power_on=True, deenergise=True)
        else:
            self._boot(power_on=False)
        return wire.ResetReply()

    def _describe_module(self, m: wire.DescribeModule) -> wire.ModuleEntry:
        cfg = self._require_config()
        if m.index >= len(cfg.modules):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"module {m.index}; the board has {len(cfg.modules)}")
        mod = cfg.modules[m.index]
        return wire.ModuleEntry(m.index, mod.name, mod.volume_m3)

    def _describe_channel(self, m: wire.DescribeChannel) -> wire.ChannelEntry:
        self._require_config()
        if m.index >= len(self.channels):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"channel {m.index}; the board has {len(self.channels)}")
        c = self.channels[m.index]
        return wire.ChannelEntry(m.index, c.id, int(c.kind), self._module_index[c.module], c.valid_min, c.valid_max,
                                 c.offset, c.gain, c.temp_coeff)

    def _describe_valve(self, m: wire.DescribeValve) -> wire.ValveEntry:
        cfg = self._require_config()
        if m.index >= len(cfg.valves):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"valve {m.index}; the board has {len(cfg.valves)}")
        v = cfg.valves[m.index]
        names = [mod.name for mod in cfg.modules]
        return wire.ValveEntry(m.index, v.id, int(v.kind), names.index(v.module_a),
                               NO_MODULE if v.module_b is None else names.index(v.module_b),
                               v.actuation_timeout_s)

    def _read_samples(self, m: wire.ReadSamples) -> "_RawReply":
        self._require_config()
        return _RawReply(MsgType.SAMPLES, self._samples_payload())

    def _stream(self, m: wire.StreamSamples) -> wire.StreamSamplesReply:
        cfg = self._require_config()
        rate = min(m.rate_hz, cfg.sample_rate_hz)
        if rate and not self._stream_rate:
            self._stream_seq = 0  # a new stream counts from 0 (docs/protocol.md, "Framing")
        self._stream_rate = rate
        self._stream_due_us = self.board_time_us()
        return wire.StreamSamplesReply(rate)

    def _command_valve(self, m: wire.CommandValve) -> wire.CommandValveReply:
        self._require_config()
        if m.valve >= len(self.valves):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"valve {m.valve}; the board has {len(self.valves)}")
        if m.command not in (ValveCommand.CLOSE, ValveCommand.OPEN):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"command {m.command}; expected 0 (close) or 1 (open)")
        self._valves.advance(self.board_time_us())
        self._valves.command(m.valve, m.command)
        return wire.CommandValveReply(m.valve, self._valves.state(m.valve))

    def _read_valves(self, m: wire.ReadValves) -> wire.ValvesReply:
        self._require_config()
        valves = self._valves
        valves.advance(self.board_time_us())
        return wire.ValvesReply(tuple(valves.state(i) for i in range(len(valves))))

    def _flash_info(self, m: wire.FlashInfo) -> wire.FlashInfoReply:
        info = self.flash.info()
        slots = tuple(wire.SlotInfo(int(st.state), st.generation, st.length, st.crc32) for st in info.slots)
        return wire.FlashInfoReply(
            slot_size=info.slot_size, block_size=info.max_block,
            active_slot=NO_SLOT if info.active_slot is None else info.active_slot,
            writing_slot=NO_SLOT if info.session_slot is None else info.session_slot,
            written=info.session_written, flags=self.flags(), slots=slots,
        )

    def _flash_begin(self, m: wire.FlashBegin) -> wire.FlashBeginReply:
        slot = self.flash.begin(m.size, m.crc32)
        return wire.FlashBeginReply(slot, m.size)

    def _flash_write(self, m: wire.FlashWrite) -> wire.FlashWriteReply:
        self.flash.write(m.offset, m.data)
        return wire.FlashWriteReply(self.flash.info().session_written)

    def _flash_read(self, m: wire.FlashRead) -> wire.FlashReadReply:
        return wire.FlashReadReply(m.slot, m.offset, self.flash.read(m.slot, m.offset, m.length))

    def _flash_crc(self, m: wire.FlashCrc) -> wire.FlashCrcReply:
        return wire.FlashCrcReply(self.flash.check(m.slot, m.offset, m.length))

    def _flash_commit(self, m: wire.FlashCommit) -> wire.FlashCommitReply:
        info = self.flash.commit()
        # The new image runs at once (as after a soft reset: valves stay where they are).
        self._boot(power_on=False)
        return wire.FlashCommitReply(
            NO_SLOT if info.active_slot is None else info.active_slot, info.generation, info.crc32)

    def _flash_abort(self, m: wire.FlashAbort) -> wire.FlashAbortReply:
        self.flash.abort()
        return wire.FlashAbortReply()

    def _hil_enter(self, m: wire.HilEnter) -> wire.HilEnterReply:
        cfg = self._require_config()
        if m.enable not in (0, 1):
            raise _Refuse(NakCode.BAD_ARGUMENT, f"enable {m.enable}; expected 0 (leave) or 1 (enter)")
        if m.enable:
            if not cfg.hil_allowed:
                raise _Refuse(NakCode.HIL_NOT_ALLOWED,
                              "HIL stimulation is not allowed by the active configuration "
                              f"(generation {self.flash.info().generation}: hil_allowed = false)")
            if not self._hil:
                self._hil = True
                self._hil_time_us = 0
                self._valves.time_us = 0
                self._valves.release()
                self._channels.restart()
        elif self._hil:
            self._hil = False
            self._valves.release()  # the real position sensors again
            # The board clock goes on from the last stimulus time (it never jumps back).
            self._t0 = self._clock() - self._hil_time_us / 1e6
            self._valves.time_us = self._hil_time_us
            self._last_conversion = -1
        return wire.HilEnterReply(int(self._hil))

    def _hil_inject(self, m: _Stimulus) -> wire.HilInjectReply:
        self._stimulate(*m)
        # accepted: the channels stimulated (a NaN value is "not stimulated this time")
        return wire.HilInjectReply(m[0], sum(1 for v in m[2] if v == v))

    def _hil_step(self, m: _Stimulus) -> "_RawReply":
        """HIL_STEP (1.2): the HIL_INJECT, then the SAMPLES a READ_SAMPLES would get at once."""
        if self.protocol_minor < wire.HIL_STEP_MINOR:
            raise _Refuse(NakCode.UNKNOWN_TYPE, f"unknown message type {MsgType.HIL_STEP:#04x} "
                          f"(protocol 1.{self.protocol_minor})")
        self._stimulate(*m, name="HIL_STEP")  # the same fields and checks as HIL_INJECT
        return _RawReply(_HIL_STEP_REPLY, self._samples_payload())

    def _stimulate(self, t: int, first: int, values: tuple[float, ...], valve_first: int,
                   feedback: tuple[int, ...] | None, name: str = "HIL_INJECT") -> None:
        """A HIL_INJECT's (or HIL_STEP's) stimulus (the fields of wire.inject_fields), checked
        whole before anything changes (a refused inject stimulates nothing): valve feedback
        stored, valves advanced and one conversion of the stimulated channels at the stimulus
        time."""
        self._require_config()
        if not self._hil:
            raise _Refuse(NakCode.NOT_IN_HIL, f"{name} outside HIL mode; send HIL_ENTER first")
        n = self._channels.n
        if first + len(values) > n:
            raise _Refuse(NakCode.BAD_ARGUMENT,
                          f"channels {first}..{first + len(values) - 1}; the board has {n}")
        if t < self._hil_time_us:
            raise _Refuse(NakCode.BAD_ARGUMENT,
                          f"stimulus time {t} us is before the board time {self._hil_time_us} us")
        if t > MAX_STIMULUS_US:
            raise _Refuse(NakCode.BAD_ARGUMENT,
                          f"stimulus time {t} us; expected at most {MAX_STIMULUS_US} (2^63 - 1)")
        valves = self._valves
        if feedback is not None:
            if self.protocol_minor < _VALVE_STIMULUS_MINOR:
                raise _Refuse(NakCode.BAD_LENGTH, f"{name}: {len(values) * 4 + 10} bytes expected "
                              f"(protocol 1.{self.protocol_minor} has no valve block)")
            nv = len(valves)
            if valve_first + len(feedback) > nv:
                raise _Refuse(NakCode.BAD_ARGUMENT, f"valves {valve_first}..{valve_first + len(feedback) - 1}"
                              f"; the board has {nv}")
            if feedback and max(feedback) > FEEDBACK_SCALE:  # a release, or a bad value
                for k, fb in enumerate(feedback):
                    if fb > FEEDBACK_SCALE and fb != _RELEASE:
                        raise _Refuse(NakCode.BAD_ARGUMENT,
                                      f"valve {valve_first + k} feedback {fb}; expected 0..{FEEDBACK_SCALE} "
                                      f"or {_RELEASE:#06x} (not stimulated)")
            valves.stimulate(valve_first, feedback)
        self._hil_time_us = t
        valves.advance(t)
        self._channels.convert(values, first, t)


class _RawReply:
    """A reply whose payload the handler built itself (the per-cycle fast path)."""

    __slots__ = ("type", "payload")

    def __init__(self, msg_type: int, payload: bytes) -> None:
        self.type = msg_type
        self.payload = payload


class _Refuse(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# --------------------------------------------------------------------------------------------
# Making a board


def open_flash(path: str | Path | None, *, board_id: str = DEFAULT_BOARD_ID,
               config: BoardConfig | None = None, key: bytes | None = None) -> BoardFlash:
    """The flash of an emulated board: in the file ``path`` (made with ``config`` as its factory
    image if it does not exist; default the soyuz-ms09 board), or in RAM when ``path`` is None.

    Raises:
        EmulatorError: the file is not a flash file or belongs to another board or key.
    """
    try:
        if path is None:
            if config is None:
                config = default_factory_config(board_id)
            return BoardFlash.format(MemoryStorage(file_size()), board_id, key=key, factory_config=config)
        return BoardFlash.open(path, board_id=board_id, key=key, factory_config=config)
    except FlashFileError as exc:
        raise EmulatorError(str(exc)) from exc


def hardware_for_scenario(scenario: Any) -> dict[str, Any]:
    """Emulator options that make the board's valves match a scenario's station (a loaded
    :class:`~hullwatch.sim.scenario.Scenario`): each valve's travel time is the scenario's
    actuation time, and the valves open at power-on are the connections open at its start."""
    travel = {c.id: c.actuation_s for c in scenario.connections}
    travel.update({r.id: r.actuation_s for r in scenario.repress})
    return {"valve_travel_s": travel, "initial_open": {c.id for c in scenario.connections if c.open}}
