"""Board wire protocol messages: declarations, encode/decode, and a fast path for per-cycle ones.

The byte-level reference is docs/protocol.md; this module is its executable form. Every payload is
declared once with construct (the declaration and the oracle); callers see :func:`encode` /
:func:`decode` and plain dataclasses, never construct containers. The per-cycle messages
(:class:`ReadSamples`, :class:`Samples`, :class:`HilInject`, :class:`HilInjectReply`) also have a
``struct`` fast path (:func:`encode_fast`, :func:`decode_fast`); tests/test_wire.py proves both
paths agree byte for byte.

Conventions: all integers big-endian; floats IEEE-754 big-endian, binary32 in per-cycle messages and binary64 in the
configuration tables; strings are a u8 length
followed by UTF-8 (ASCII for ids). A response has type ``request | 0x80`` and the request's seq;
a refusal is :class:`Nak` (type 0xFF) with the request's seq.

Usage::

    frame = encode(ReadSamples(), seq=7)           # bytes on the wire, 0x00 included
    for raw in reader.feed(port.read(n)):
        msg = decode(raw.type, raw.payload)         # -> Samples(...), Nak(...), ...

Raises:
    ProtocolError (from hullwatch.hal.errors) on a payload that does not match its declaration;
    the message names the message type and what was wrong.
"""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import construct as cs

from .codec import compile_fields, compile_struct, field_offsets, flatten
from .errors import ProtocolError
from .framing import MAX_PAYLOAD, FrameReader, RawFrame, crc16, encode_frame

__all__ = [
    "PROTOCOL_MAJOR", "PROTOCOL_MINOR", "MAX_PAYLOAD", "MAX_BLOCK", "MsgType", "NakCode", "FlashRefusal",
    "FLASH_NAK_BASE", "nak_code_of",
    "BoardFlags", "SlotState", "SampleState", "ValveCommand", "ResetKind", "NO_SLOT", "NO_MODULE",
    "AGE_NEVER", "FEEDBACK_SCALE", "Message", "encode", "decode", "encode_payload", "decode_payload",
    "encode_fast", "decode_fast", "FrameReader", "RawFrame", "crc16", "encode_frame",
    "Identify", "IdentifyReply", "Ping", "PingReply", "Reset", "ResetReply",
    "DescribeModule", "ModuleEntry", "DescribeChannel", "ChannelEntry", "DescribeValve", "ValveEntry",
    "ReadSamples", "Samples", "ChannelSample", "ValveState", "StreamSamples", "StreamSamplesReply",
    "StreamFrame", "CommandValve", "CommandValveReply", "ReadValves", "ValvesReply",
    "FlashInfo", "FlashInfoReply", "SlotInfo", "FlashBegin", "FlashBeginReply", "FlashWrite",
    "FlashWriteReply", "FlashRead", "FlashReadReply", "FlashCrc", "FlashCrcReply", "FlashCommit",
    "FlashCommitReply", "FlashAbort", "FlashAbortReply", "HilEnter", "HilEnterReply", "HilInject",
    "HilInjectReply", "ValveStimulus", "FEEDBACK_RELEASE", "VALVE_STIMULUS_MINOR", "feedback_counts",
    "Nak", "reply_type", "SamplesCodec",
]

#: Protocol version this host and the emulator speak. Majors must match; minors only add
#: (docs/protocol.md, "Version negotiation" and "Version history").
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1
#: First minor whose HIL_INJECT may carry the valve-feedback block (:class:`ValveStimulus`). A host
#: sends the block only to a board whose IDENTIFY_REPLY minor is at least this; a 1.0 board would
#: NAK it BAD_LENGTH.
VALVE_STIMULUS_MINOR = 1
#: Largest data block in one FLASH_WRITE / FLASH_READ (leaves room for the other fields).
MAX_BLOCK = 1024
#: "no slot" / "no module" / "never sampled" sentinels.
NO_SLOT = 0xFF
NO_MODULE = 0xFF
AGE_NEVER = 0xFFFFFFFF
#: Valve feedback position on the wire: u16, 0 = closed, FEEDBACK_SCALE = fully open.
FEEDBACK_SCALE = 10000
#: In a HIL_INJECT valve block: "not stimulated", the board's own position sensing reports again.
FEEDBACK_RELEASE = 0xFFFF


class MsgType(enum.IntEnum):
    """Message type byte. Requests are 0x01..0x7E; a response is ``request | 0x80``."""

    IDENTIFY = 0x01
    PING = 0x02
    RESET = 0x03
    DESCRIBE_MODULE = 0x04
    DESCRIBE_CHANNEL = 0x05
    DESCRIBE_VALVE = 0x06
    READ_SAMPLES = 0x10
    STREAM_SAMPLES = 0x11
    COMMAND_VALVE = 0x12
    READ_VALVES = 0x13
    FLASH_INFO = 0x20
    FLASH_BEGIN = 0x21
    FLASH_WRITE = 0x22
    FLASH_READ = 0x23
    FLASH_CRC = 0x24
    FLASH_COMMIT = 0x25
    FLASH_ABORT = 0x26
    HIL_ENTER = 0x30
    HIL_INJECT = 0x31

    IDENTIFY_REPLY = 0x81
    PING_REPLY = 0x82
    RESET_REPLY = 0x83
    MODULE_ENTRY = 0x84
    CHANNEL_ENTRY = 0x85
    VALVE_ENTRY = 0x86
    SAMPLES = 0x90
    STREAM_SAMPLES_REPLY = 0x91
    COMMAND_VALVE_REPLY = 0x92
    VALVES_REPLY = 0x93
    FLASH_INFO_REPLY = 0xA0
    FLASH_BEGIN_REPLY = 0xA1
    FLASH_WRITE_REPLY = 0xA2
    FLASH_READ_REPLY = 0xA3
    FLASH_CRC_REPLY = 0xA4
    FLASH_COMMIT_REPLY = 0xA5
    FLASH_ABORT_REPLY = 0xA6
    HIL_ENTER_REPLY = 0xB0
    HIL_INJECT_REPLY = 0xB1

    STREAM_FRAME = 0xE0  #: unsolicited, while streaming; seq counts stream frames
    NAK = 0xFF


def reply_type(request_type: int) -> int:
    """The response type of a request type."""
    return request_type | 0x80


class FlashRefusal(enum.IntEnum):
    """Why the board's flash layer refused a flash request. On the wire it is the NAK code
    ``FLASH_NAK_BASE + value`` (:class:`NakCode` ``FLASH_<name>``), with a reason text."""

    NO_SESSION = 1  #: FLASH_WRITE/FLASH_COMMIT without FLASH_BEGIN
    BAD_LENGTH = 2  #: image empty or larger than a slot; block/read empty or > block_size
    OUT_OF_ORDER = 3  #: a block starts past the bytes written so far (a gap)
    OUT_OF_RANGE = 4  #: a block or read runs past the image length or the slot
    INCOMPLETE = 5  #: commit before every byte of the image was written
    CRC_MISMATCH = 6  #: stored bytes' CRC-32 differs from the one declared at FLASH_BEGIN
    INVALID_IMAGE = 7  #: the image does not decode or validate (text names the field)
    TAG_MISSING = 8  #: the board holds a key and the image carries no HMAC tag
    TAG_MISMATCH = 9  #: the HMAC tag does not match the board's key
    STALE_GENERATION = 10  #: the image's generation is not above the active one
    BAD_SLOT = 11  #: a slot number other than 0 (A) or 1 (B)


#: NAK code of FlashRefusal value 0; FLASH_NAK_BASE + refusal is the code on the wire
FLASH_NAK_BASE = 0x20

#: NAK codes other than the flash refusals: name, value, meaning
_NAK_CODES: tuple[tuple[str, int, str], ...] = (
    ("UNKNOWN_TYPE", 0x01, "the board does not know this message type"),
    ("BAD_LENGTH", 0x02, "payload too short/long for the type"),
    ("BAD_ARGUMENT", 0x03, "a field is out of range (index, rate, slot...)"),
    ("BUSY", 0x04, "the board cannot serve it now; retry later"),
    ("VERSION", 0x05, "the host's protocol major is not supported"),
    ("HIL_NOT_ALLOWED", 0x10, "the active configuration does not allow HIL"),
    ("NOT_IN_HIL", 0x11, "HIL_INJECT outside HIL mode"),
    ("NO_CONFIG", 0x12, "no valid configuration image: sensors and valves are disabled"),
    ("INTERNAL", 0x7F, "board firmware fault"),
)

#: Why the board refused a request (NAK ``code``): the codes of :data:`_NAK_CODES`, and
#: ``FLASH_<name>`` = ``FLASH_NAK_BASE + FlashRefusal.<name>`` for every flash refusal (defined
#: once, in :class:`FlashRefusal`).
NakCode = enum.IntEnum("NakCode", [(name, value) for name, value, _ in _NAK_CODES]
                       + [(f"FLASH_{r.name}", FLASH_NAK_BASE + r) for r in FlashRefusal],
                       module=__name__)
NakCode.__doc__ = "Why the board refused a request (NAK ``code``); FLASH_* = FLASH_NAK_BASE + FlashRefusal."


def nak_code_of(refusal: FlashRefusal) -> "NakCode":
    """The NAK code the board answers a flash refusal with."""
    return NakCode(FLASH_NAK_BASE + refusal)


class BoardFlags(enum.IntFlag):
    """Board state bits in IDENTIFY_REPLY and SAMPLES."""

    CONFIG_VALID = 0x01  #: a valid configuration image is active
    HIL_ALLOWED = 0x02  #: the active configuration allows HIL stimulation
    HIL_ACTIVE = 0x04  #: the board is in HIL mode (sensor inputs come from HIL_INJECT)
    STREAMING = 0x08  #: STREAM_FRAMEs are being sent
    KEY_PRESENT = 0x10  #: the board holds an HMAC key and only accepts tagged images
    FLASH_WRITING = 0x20  #: a FLASH_BEGIN is in progress


class SlotState(enum.IntEnum):
    EMPTY = 0  #: erased, nothing written
    WRITING = 1  #: FLASH_BEGIN done, not committed
    VALID = 2  #: committed image, not the active one (the previous image)
    ACTIVE = 3  #: the image the board runs
    INVALID = 4  #: bytes present but CRC or image checks fail (e.g. power cut mid-write)


class SampleState(enum.IntEnum):
    """Per-channel / per-valve status byte; same numbering as hal.interfaces.SampleStatus."""

    OK = 0
    STALE = 1  #: no new conversion since the previous read
    INVALID = 2  #: outside the channel's valid range, or sensor fault
    NO_DATA = 3  #: never sampled (or not stimulated in HIL mode)


class ValveCommand(enum.IntEnum):
    CLOSE = 0
    OPEN = 1
    NONE = 0xFF  #: never commanded since reset


class ResetKind(enum.IntEnum):
    SOFT = 0  #: leave HIL, stop streaming, abort flash writing, reload the active config
    BOOT = 1  #: as a power cycle: boot selection runs again, valves de-energised


# --------------------------------------------------------------------------------------------
# Declarations. One Struct per payload; the dataclass of the same name carries its fields.

_str8 = cs.PascalString(cs.Int8ub, "utf8")
_f32 = cs.Float32b
_f64 = cs.Float64b  # configuration tables: exactly the image's values (not per cycle)

_ChannelSample = cs.Struct(
    "raw" / cs.Int32sb,  # ADC counts
    "value" / _f32,  # calibrated physical value, SI unit of the channel kind
    "age_us" / cs.Int32ub,  # board_time_us - time of this conversion; AGE_NEVER if never
    "status" / cs.Int8ub,  # SampleState
)
_ValveState = cs.Struct(
    "commanded" / cs.Int8ub,  # ValveCommand
    "feedback" / cs.Int16ub,  # 0..FEEDBACK_SCALE
    "status" / cs.Int8ub,  # SampleState of the feedback reading
)
_ValveStimulus = cs.Struct(
    "first" / cs.Int8ub,  # index of the first valve in feedback
    "feedback" / cs.PrefixedArray(cs.Int8ub, cs.Int16ub),  # 0..FEEDBACK_SCALE, or FEEDBACK_RELEASE
)
_SlotInfo = cs.Struct(
    "state" / cs.Int8ub,  # SlotState
    "generation" / cs.Int32ub,
    "length" / cs.Int32ub,  # image bytes in the slot
    "crc32" / cs.Int32ub,  # CRC-32 (zlib) of those bytes
)

DECLARATIONS: dict[MsgType, cs.Construct] = {
    MsgType.IDENTIFY: cs.Struct("host_major" / cs.Int8ub, "host_minor" / cs.Int8ub),
    MsgType.IDENTIFY_REPLY: cs.Struct(
        "protocol_major" / cs.Int8ub,
        "protocol_minor" / cs.Int8ub,
        "fw_major" / cs.Int8ub,
        "fw_minor" / cs.Int8ub,
        "fw_patch" / cs.Int8ub,
        "board_id" / _str8,
        "module_count" / cs.Int8ub,
        "channel_count" / cs.Int8ub,
        "valve_count" / cs.Int8ub,
        "slot_count" / cs.Int8ub,
        "slot_size" / cs.Int32ub,
        "block_size" / cs.Int16ub,
        "max_payload" / cs.Int16ub,
        "active_slot" / cs.Int8ub,
        "generation" / cs.Int32ub,
        "config_crc32" / cs.Int32ub,
        "flags" / cs.Int8ub,
        "sample_rate_hz" / cs.Int16ub,
    ),
    MsgType.PING: cs.Struct("data" / cs.GreedyBytes),
    MsgType.PING_REPLY: cs.Struct("data" / cs.GreedyBytes),
    MsgType.RESET: cs.Struct("kind" / cs.Int8ub),
    MsgType.RESET_REPLY: cs.Struct(),
    MsgType.DESCRIBE_MODULE: cs.Struct("index" / cs.Int8ub),
    MsgType.MODULE_ENTRY: cs.Struct("index" / cs.Int8ub, "name" / _str8, "volume_m3" / _f64),
    MsgType.DESCRIBE_CHANNEL: cs.Struct("index" / cs.Int8ub),
    MsgType.CHANNEL_ENTRY: cs.Struct(
        "index" / cs.Int8ub,
        "id" / _str8,
        "kind" / cs.Int8ub,  # hal.interfaces.ChannelKind: 0 pressure Pa, 1 temperature K, 2 flow kg/s
        "module" / cs.Int8ub,  # index into the module table
        "valid_min" / _f64,
        "valid_max" / _f64,
        "cal_offset" / _f64,  # unit of the kind
        "cal_gain" / _f64,  # unit per count
        "cal_tempco" / _f64,  # unit per K away from 295 K (hal.config_image)
    ),
    MsgType.DESCRIBE_VALVE: cs.Struct("index" / cs.Int8ub),
    MsgType.VALVE_ENTRY: cs.Struct(
        "index" / cs.Int8ub,
        "id" / _str8,
        "kind" / cs.Int8ub,  # hal.interfaces.ValveKind
        "module_a" / cs.Int8ub,
        "module_b" / cs.Int8ub,  # NO_MODULE for a repress valve
        "actuation_timeout_s" / _f64,
    ),
    MsgType.READ_SAMPLES: cs.Struct(),
    MsgType.SAMPLES: cs.Struct(
        "board_time_us" / cs.Int64ub,
        "flags" / cs.Int8ub,
        "channels" / cs.PrefixedArray(cs.Int8ub, _ChannelSample),
        "valves" / cs.PrefixedArray(cs.Int8ub, _ValveState),
    ),
    MsgType.STREAM_SAMPLES: cs.Struct("rate_hz" / cs.Int16ub),
    MsgType.STREAM_SAMPLES_REPLY: cs.Struct("rate_hz" / cs.Int16ub),
    MsgType.COMMAND_VALVE: cs.Struct("valve" / cs.Int8ub, "command" / cs.Int8ub),
    MsgType.COMMAND_VALVE_REPLY: cs.Struct("valve" / cs.Int8ub, "state" / _ValveState),
    MsgType.READ_VALVES: cs.Struct(),
    MsgType.VALVES_REPLY: cs.Struct("valves" / cs.PrefixedArray(cs.Int8ub, _ValveState)),
    MsgType.FLASH_INFO: cs.Struct(),
    MsgType.FLASH_INFO_REPLY: cs.Struct(
        "slot_size" / cs.Int32ub,
        "block_size" / cs.Int16ub,
        "active_slot" / cs.Int8ub,
        "writing_slot" / cs.Int8ub,  # NO_SLOT unless a FLASH_BEGIN is in progress
        "written" / cs.Int32ub,  # bytes written so far to writing_slot
        "flags" / cs.Int8ub,  # BoardFlags
        "slots" / cs.PrefixedArray(cs.Int8ub, _SlotInfo),
    ),
    MsgType.FLASH_BEGIN: cs.Struct("size" / cs.Int32ub, "crc32" / cs.Int32ub),
    MsgType.FLASH_BEGIN_REPLY: cs.Struct("slot" / cs.Int8ub, "size" / cs.Int32ub),
    MsgType.FLASH_WRITE: cs.Struct("offset" / cs.Int32ub, "data" / cs.GreedyBytes),
    MsgType.FLASH_WRITE_REPLY: cs.Struct("written" / cs.Int32ub),
    MsgType.FLASH_READ: cs.Struct("slot" / cs.Int8ub, "offset" / cs.Int32ub, "length" / cs.Int16ub),
    MsgType.FLASH_READ_REPLY: cs.Struct("slot" / cs.Int8ub, "offset" / cs.Int32ub, "data" / cs.GreedyBytes),
    MsgType.FLASH_CRC: cs.Struct("slot" / cs.Int8ub, "offset" / cs.Int32ub, "length" / cs.Int32ub),
    MsgType.FLASH_CRC_REPLY: cs.Struct("crc32" / cs.Int32ub),
    MsgType.FLASH_COMMIT: cs.Struct(),
    MsgType.FLASH_COMMIT_REPLY: cs.Struct(
        "active_slot" / cs.Int8ub, "generation" / cs.Int32ub, "crc32" / cs.Int32ub
    ),
    MsgType.FLASH_ABORT: cs.Struct(),
    MsgType.FLASH_ABORT_REPLY: cs.Struct(),
    MsgType.HIL_ENTER: cs.Struct("enable" / cs.Int8ub),
    MsgType.HIL_ENTER_REPLY: cs.Struct("active" / cs.Int8ub),
    MsgType.HIL_INJECT: cs.Struct(
        "time_us" / cs.Int64ub,  # stimulus time; becomes the board time in HIL mode
        "first" / cs.Int8ub,  # index of the first channel in values
        "values" / cs.PrefixedArray(cs.Int8ub, _f32),  # physical values, SI; NaN = not stimulated
        # Since 1.1, optional (absent = the 1.0 form): valve position-sensor stimulus.
        "valves" / cs.Optional(_ValveStimulus),
    ),
    MsgType.HIL_INJECT_REPLY: cs.Struct("board_time_us" / cs.Int64ub, "accepted" / cs.Int8ub),
    MsgType.STREAM_FRAME: cs.Struct(
        "board_time_us" / cs.Int64ub,
        "flags" / cs.Int8ub,
        "channels" / cs.PrefixedArray(cs.Int8ub, _ChannelSample),
        "valves" / cs.PrefixedArray(cs.Int8ub, _ValveState),
    ),
    MsgType.NAK: cs.Struct("code" / cs.Int8ub, "request_type" / cs.Int8ub, "text" / _str8),
}


# --------------------------------------------------------------------------------------------
# Dataclasses. ``TYPE`` is the message type; field names equal the declaration's.


class Message:
    """Base of every message dataclass."""

    __slots__ = ()
    TYPE: ClassVar[MsgType]
    #: field name -> dataclass of the items of a PrefixedArray (or of a nested Struct)
    _NESTED: ClassVar[dict[str, type]] = {}


def _msg(cls: type) -> type:
    return dataclass(frozen=True, slots=True)(cls)


@_msg
class ChannelSample:
    raw: int
    value: float
    age_us: int
    status: int


@_msg
class ValveState:
    commanded: int
    feedback: int
    status: int

    @property
    def position(self) -> float:
        """Feedback position as a fraction 0.0 (closed) .. 1.0 (open)."""
        return self.feedback / FEEDBACK_SCALE


@_msg
class SlotInfo:
    state: int
    generation: int
    length: int
    crc32: int


@_msg
class Identify(Message):
    TYPE = MsgType.IDENTIFY
    host_major: int = PROTOCOL_MAJOR
    host_minor: int = PROTOCOL_MINOR


@_msg
class IdentifyReply(Message):
    TYPE = MsgType.IDENTIFY_REPLY
    protocol_major: int
    protocol_minor: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    board_id: str
    module_count: int
    channel_count: int
    valve_count: int
    slot_count: int
    slot_size: int
    block_size: int
    max_payload: int
    active_slot: int
    generation: int
    config_crc32: int
    flags: int
    sample_rate_hz: int

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"

    @property
    def protocol_version(self) -> str:
        return f"{self.protocol_major}.{self.protocol_minor}"


@_msg
class Ping(Message):
    TYPE = MsgType.PING
    data: bytes = b""


@_msg
class PingReply(Message):
    TYPE = MsgType.PING_REPLY
    data: bytes = b""


@_msg
class Reset(Message):
    TYPE = MsgType.RESET
    kind: int = ResetKind.SOFT


@_msg
class ResetReply(Message):
    TYPE = MsgType.RESET_REPLY


@_msg
class DescribeModule(Message):
    TYPE = MsgType.DESCRIBE_MODULE
    index: int


@_msg
class ModuleEntry(Message):
    TYPE = MsgType.MODULE_ENTRY
    index: int
    name: str
    volume_m3: float


@_msg
class DescribeChannel(Message):
    TYPE = MsgType.DESCRIBE_CHANNEL
    index: int


@_msg
class ChannelEntry(Message):
    TYPE = MsgType.CHANNEL_ENTRY
    index: int
    id: str
    kind: int
    module: int
    valid_min: float
    valid_max: float
    cal_offset: float
    cal_gain: float
    cal_tempco: float


@_msg
class DescribeValve(Message):
    TYPE = MsgType.DESCRIBE_VALVE
    index: int


@_msg
class ValveEntry(Message):
    TYPE = MsgType.VALVE_ENTRY
    index: int
    id: str
    kind: int
    module_a: int
    module_b: int
    actuation_timeout_s: float


@_msg
class ReadSamples(Message):
    TYPE = MsgType.READ_SAMPLES


@_msg
class Samples(Message):
    TYPE = MsgType.SAMPLES
    _NESTED = {"channels": ChannelSample, "valves": ValveState}
    board_time_us: int
    flags: int
    channels: tuple[ChannelSample, ...]
    valves: tuple[ValveState, ...]


@_msg
class StreamFrame(Message):
    TYPE = MsgType.STREAM_FRAME
    _NESTED = {"channels": ChannelSample, "valves": ValveState}
    board_time_us: int
    flags: int
    channels: tuple[ChannelSample, ...]
    valves: tuple[ValveState, ...]


@_msg
class StreamSamples(Message):
    TYPE = MsgType.STREAM_SAMPLES
    rate_hz: int


@_msg
class StreamSamplesReply(Message):
    TYPE = MsgType.STREAM_SAMPLES_REPLY
    rate_hz: int


@_msg
class CommandValve(Message):
    TYPE = MsgType.COMMAND_VALVE
    valve: int
    command: int


@_msg
class CommandValveReply(Message):
    TYPE = MsgType.COMMAND_VALVE_REPLY
    _NESTED = {"state": ValveState}
    valve: int
    state: ValveState


@_msg
class ReadValves(Message):
    TYPE = MsgType.READ_VALVES


@_msg
class ValvesReply(Message):
    TYPE = MsgType.VALVES_REPLY
    _NESTED = {"valves": ValveState}
    valves: tuple[ValveState, ...]


@_msg
class FlashInfo(Message):
    TYPE = MsgType.FLASH_INFO


@_msg
class FlashInfoReply(Message):
    TYPE = MsgType.FLASH_INFO_REPLY
    _NESTED = {"slots": SlotInfo}
    slot_size: int
    block_size: int
    active_slot: int
    writing_slot: int
    written: int
    flags: int
    slots: tuple[SlotInfo, ...]


@_msg
class FlashBegin(Message):
    TYPE = MsgType.FLASH_BEGIN
    size: int
    crc32: int


@_msg
class FlashBeginReply(Message):
    TYPE = MsgType.FLASH_BEGIN_REPLY
    slot: int
    size: int


@_msg
class FlashWrite(Message):
    TYPE = MsgType.FLASH_WRITE
    offset: int
    data: bytes


@_msg
class FlashWriteReply(Message):
    TYPE = MsgType.FLASH_WRITE_REPLY
    written: int


@_msg
class FlashRead(Message):
    TYPE = MsgType.FLASH_READ
    slot: int
    offset: int
    length: int


@_msg
class FlashReadReply(Message):
    TYPE = MsgType.FLASH_READ_REPLY
    slot: int
    offset: int
    data: bytes


@_msg
class FlashCrc(Message):
    TYPE = MsgType.FLASH_CRC
    slot: int
    offset: int
    length: int


@_msg
class FlashCrcReply(Message):
    TYPE = MsgType.FLASH_CRC_REPLY
    crc32: int


@_msg
class FlashCommit(Message):
    TYPE = MsgType.FLASH_COMMIT


@_msg
class FlashCommitReply(Message):
    TYPE = MsgType.FLASH_COMMIT_REPLY
    active_slot: int
    generation: int
    crc32: int


@_msg
class FlashAbort(Message):
    TYPE = MsgType.FLASH_ABORT


@_msg
class FlashAbortReply(Message):
    TYPE = MsgType.FLASH_ABORT_REPLY


@_msg
class HilEnter(Message):
    TYPE = MsgType.HIL_ENTER
    enable: int = 1


@_msg
class HilEnterReply(Message):
    TYPE = MsgType.HIL_ENTER_REPLY
    active: int


@_msg
class ValveStimulus:
    """The valve-feedback block of a HIL_INJECT (protocol 1.1): positions for valves
    ``first .. first + len(feedback) - 1``, in wire units (0..FEEDBACK_SCALE; FEEDBACK_RELEASE =
    not stimulated). Build it from fractions with :func:`feedback_counts`."""

    first: int
    feedback: tuple[int, ...]


@_msg
class HilInject(Message):
    """Sensor stimulus (``values``, SI, NaN = not stimulated) for channels from ``first``, at
    ``time_us``; since 1.1 optionally the valves' position-sensor stimulus (``valves``; None = the
    1.0 form, no block on the wire)."""

    TYPE = MsgType.HIL_INJECT
    _NESTED = {"valves": ValveStimulus}
    time_us: int
    first: int
    values: tuple[float, ...]
    valves: ValveStimulus | None = None


@_msg
class HilInjectReply(Message):
    TYPE = MsgType.HIL_INJECT_REPLY
    board_time_us: int
    accepted: int


@_msg
class Nak(Message):
    TYPE = MsgType.NAK
    code: int
    request_type: int
    text: str

    @property
    def code_name(self) -> str:
        try:
            return NakCode(self.code).name
        except ValueError:
            return f"{self.code:#04x}"


CLASSES: dict[int, type] = {
    cls.TYPE: cls  # type: ignore[attr-defined]
    for cls in (
        Identify, IdentifyReply, Ping, PingReply, Reset, ResetReply, DescribeModule, ModuleEntry,
        DescribeChannel, ChannelEntry, DescribeValve, ValveEntry, ReadSamples, Samples, StreamFrame,
        StreamSamples, StreamSamplesReply, CommandValve, CommandValveReply, ReadValves, ValvesReply,
        FlashInfo, FlashInfoReply, FlashBegin, FlashBeginReply, FlashWrite, FlashWriteReply,
        FlashRead, FlashReadReply, FlashCrc, FlashCrcReply, FlashCommit, FlashCommitReply,
        FlashAbort, FlashAbortReply, HilEnter, HilEnterReply, HilInject, HilInjectReply, Nak,
    )
}
assert set(CLASSES) == set(DECLARATIONS), "every declared type needs a dataclass and vice versa"


def _to_plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    return value


def _from_container(cls: type, container: Any) -> Any:
    nested = getattr(cls, "_NESTED", {})
    kwargs = {}
    for f in fields(cls):
        v = container[f.name]
        item_cls = nested.get(f.name)
        if item_cls is not None and v is not None:  # None: an optional block that is absent
            if isinstance(v, list):
                v = tuple(_from_container(item_cls, item) for item in v)
            else:
                v = _from_container(item_cls, v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def encode_payload(msg: Message) -> bytes:
    """Payload bytes of ``msg`` (construct path).

    Raises:
        ProtocolError: a field does not fit its declaration (names the message and the field).
    """
    try:
        payload = DECLARATIONS[msg.TYPE].build(_to_plain(msg))
    except (cs.ConstructError, TypeError, ValueError, OverflowError, struct.error) as exc:
        raise ProtocolError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            f"{type(msg).__name__} payload is {len(payload)} bytes, more than MAX_PAYLOAD {MAX_PAYLOAD}"
        )
    return payload


_STRICT: dict[int, cs.Construct] = {}


def _strict(decl: cs.Construct) -> cs.Construct:
    """``decl`` followed by Terminated: trailing bytes are an error, not silently ignored."""
    key = id(decl)
    strict = _STRICT.get(key)
    if strict is None:
        strict = _STRICT[key] = cs.FocusedSeq("body", "body" / decl, cs.Terminated)
    return strict


def decode_payload(msg_type: int, payload: bytes) -> Message:
    """Decode one payload (construct path) into its dataclass.

    Raises:
        ProtocolError: unknown type, truncated payload or trailing bytes.
    """
    try:
        decl = DECLARATIONS[MsgType(msg_type)]
    except ValueError:
        raise ProtocolError(f"unknown message type {msg_type:#04x}") from None
    cls = CLASSES[msg_type]
    try:
        container = _strict(decl).parse(payload)
    except cs.TerminatedError:
        used = len(decl.build(decl.parse(payload)))
        raise ProtocolError(
            f"{MsgType(msg_type).name}: {len(payload) - used} unexpected trailing bytes at payload offset {used}"
        ) from None
    except (cs.ConstructError, UnicodeDecodeError) as exc:
        raise ProtocolError(
            f"{MsgType(msg_type).name}: malformed payload of {len(payload)} bytes: " + str(exc).replace("\n", " ")
        ) from exc
    return _from_container(cls, container)


def encode(msg: Message, seq: int) -> bytes:
    """The complete wire frame of ``msg`` with sequence number ``seq`` (0x00 delimiter included).

    Uses the fast path for per-cycle messages, construct otherwise.
    """
    fast = _FAST_ENCODERS.get(msg.TYPE)
    payload = fast(msg) if fast is not None else encode_payload(msg)
    return encode_frame(msg.TYPE, seq & 0xFF, payload)


def decode(msg_type: int, payload: bytes) -> Message:
    """Decode a frame's payload; fast path for per-cycle messages, construct otherwise.

    Raises:
        ProtocolError: as :func:`decode_payload`.
    """
    fast = _FAST_DECODERS.get(msg_type)
    if fast is not None:
        return fast(payload)
    return decode_payload(msg_type, payload)


# --------------------------------------------------------------------------------------------
# Fast path (struct) for the per-cycle messages. The struct layouts are compiled from the
# declarations above (hal/codec.py); tests check byte-for-byte agreement with construct for every
# field and edge value.

_SAMPLES = DECLARATIONS[MsgType.SAMPLES]
_INJECT = DECLARATIONS[MsgType.HIL_INJECT]
#: board_time_us, flags, channel count: the SAMPLES / STREAM_FRAME fields before the channels
_S_SAMPLES_HEAD = compile_fields(flatten(_SAMPLES, {"channels": 0, "valves": 0})[:3])
_S_CHANNEL = compile_struct(_ChannelSample)
_S_VALVE = compile_struct(_ValveState)
#: time_us, first, value count: the HIL_INJECT fields before the values
_S_INJECT_HEAD = compile_fields(flatten(cs.Struct(*_INJECT.subcons[:3]), {"values": 0})[:3])
_S_INJECT_REPLY = compile_struct(DECLARATIONS[MsgType.HIL_INJECT_REPLY])
_INJECT_VALUES = _INJECT.subcons[2]  #: the PrefixedArray of f32 values


@functools.lru_cache(maxsize=256)  # per-cycle: the counts are those of the layout
def _inject_struct(n_values: int, n_valves: int | None) -> struct.Struct:
    """HIL_INJECT with ``n_values`` values and (1.1) a valve block of ``n_valves`` feedbacks."""
    fields = flatten(cs.Struct(*_INJECT.subcons[:3]), {"values": n_values})
    if n_valves is not None:
        fields += flatten(_ValveStimulus, {"feedback": n_valves})
    return compile_fields(fields)


@functools.lru_cache(maxsize=256)
def _values_struct(n: int) -> struct.Struct:
    """``n`` HIL_INJECT values alone (their items, no count)."""
    return compile_fields(flatten(_INJECT_VALUES, {"values": n})[1:])


@functools.lru_cache(maxsize=256)
def _feedback_struct(n: int) -> struct.Struct:
    """``n`` valve feedbacks of a ValveStimulus alone (their items, no count)."""
    return compile_fields(flatten(_ValveStimulus, {"feedback": n})[2:])


def _encode_samples_fast(msg: Samples | StreamFrame) -> bytes:
    parts = [_S_SAMPLES_HEAD.pack(msg.board_time_us, msg.flags, len(msg.channels))]
    pack_c = _S_CHANNEL.pack
    for c in msg.channels:
        parts.append(pack_c(c.raw, c.value, c.age_us, c.status))
    parts.append(bytes((len(msg.valves),)))
    pack_v = _S_VALVE.pack
    for v in msg.valves:
        parts.append(pack_v(v.commanded, v.feedback, v.status))
    return b"".join(parts)


def _decode_samples_into(cls: type, payload: bytes) -> Any:
    try:
        t, flags, nc = _S_SAMPLES_HEAD.unpack_from(payload, 0)
        off = _S_SAMPLES_HEAD.size
        channels = tuple(
            ChannelSample(*rec) for rec in _S_CHANNEL.iter_unpack(payload[off:off + nc * _S_CHANNEL.size])
        )
        if len(channels) != nc:
            raise struct.error("channel records truncated")
        off += nc * _S_CHANNEL.size
        nv = payload[off]
        off += 1
        end = off + nv * _S_VALVE.size
        if end != len(payload):
            raise struct.error(f"valve records end at {end}, payload is {len(payload)} bytes")
        valves = tuple(ValveState(*rec) for rec in _S_VALVE.iter_unpack(payload[off:end]))
    except (struct.error, IndexError) as exc:
        raise ProtocolError(f"{cls.TYPE.name}: malformed payload of {len(payload)} bytes: {exc}") from exc
    return cls(t, flags, channels, valves)


def _encode_inject_fast(msg: HilInject) -> bytes:
    n = len(msg.values)
    v = msg.valves
    if v is None:
        return _inject_struct(n, None).pack(msg.time_us, msg.first, n, *msg.values)
    nv = len(v.feedback)
    return _inject_struct(n, nv).pack(msg.time_us, msg.first, n, *msg.values, v.first, nv, *v.feedback)


def _decode_inject_fast(payload: bytes) -> HilInject:
    try:
        t, first, n = _S_INJECT_HEAD.unpack_from(payload, 0)
        off = _S_INJECT_HEAD.size + _values_struct(n).size
        if len(payload) < off:
            raise struct.error(f"{n} values need {off} bytes, got {len(payload)}")
        values = _values_struct(n).unpack_from(payload, _S_INJECT_HEAD.size)
        valves = None
        if len(payload) > off:  # the 1.1 valve block
            end = off + 2 + 2 * payload[off + 1] if len(payload) >= off + 2 else off + 2
            if len(payload) < end:
                raise struct.error(f"valve block at payload offset {off}: expected valve_first u8, "
                                   f"valve_count u8 and valve_count x u16 ({end - off} bytes), got "
                                   f"{len(payload) - off} bytes")
            if len(payload) > end:
                raise struct.error(f"{len(payload) - end} unexpected trailing bytes at payload offset {end}")
            nv = payload[off + 1]
            valves = ValveStimulus(payload[off], _feedback_struct(nv).unpack_from(payload, off + 2))
    except struct.error as exc:
        raise ProtocolError(f"HIL_INJECT: malformed payload of {len(payload)} bytes: {exc}") from exc
    return HilInject(t, first, values, valves)


def feedback_counts(positions: Any) -> tuple[int, ...]:
    """Valve positions as fractions (0.0 closed .. 1.0 open; NaN = not stimulated) -> the u16
    feedback of a :class:`ValveStimulus` (rounded, clamped to 0..FEEDBACK_SCALE; NaN ->
    FEEDBACK_RELEASE)."""
    # One pass, per-cycle path: NaN fails every comparison and lands on FEEDBACK_RELEASE.
    return tuple([int(x * FEEDBACK_SCALE + 0.5) if 0.0 < x < 1.0 else
                  0 if x <= 0.0 else FEEDBACK_SCALE if x >= 1.0 else FEEDBACK_RELEASE
                  for x in positions])


def _decode_inject_reply_fast(payload: bytes) -> HilInjectReply:
    if len(payload) != _S_INJECT_REPLY.size:
        raise ProtocolError(f"HIL_INJECT_REPLY: expected {_S_INJECT_REPLY.size} bytes, got {len(payload)}")
    return HilInjectReply(*_S_INJECT_REPLY.unpack(payload))


def _decode_empty(cls: type) -> Any:
    instance = cls()

    def dec(payload: bytes) -> Any:
        if payload:
            raise ProtocolError(f"{cls.TYPE.name}: expected an empty payload, got {len(payload)} bytes")
        return instance

    return dec


_FAST_ENCODERS: dict[int, Any] = {
    MsgType.READ_SAMPLES: lambda msg: b"",
    MsgType.SAMPLES: _encode_samples_fast,
    MsgType.STREAM_FRAME: _encode_samples_fast,
    MsgType.HIL_INJECT: _encode_inject_fast,
    MsgType.HIL_INJECT_REPLY: lambda msg: _S_INJECT_REPLY.pack(msg.board_time_us, msg.accepted),
}
_FAST_DECODERS: dict[int, Any] = {
    MsgType.READ_SAMPLES: _decode_empty(ReadSamples),
    MsgType.SAMPLES: lambda p: _decode_samples_into(Samples, p),
    MsgType.STREAM_FRAME: lambda p: _decode_samples_into(StreamFrame, p),
    MsgType.HIL_INJECT: _decode_inject_fast,
    MsgType.HIL_INJECT_REPLY: _decode_inject_reply_fast,
}


#: the columns SamplesCodec moves by slice, in the declarations' order (checked at import)
_CHANNEL_COLUMNS = ("raw", "value", "age_us", "status")
_VALVE_COLUMNS = ("commanded", "feedback", "status")
if tuple(f.path for f in flatten(_ChannelSample)) != _CHANNEL_COLUMNS \
        or tuple(f.path for f in flatten(_ValveState)) != _VALVE_COLUMNS:
    raise TypeError("SamplesCodec's columns no longer match _ChannelSample / _ValveState")
_CHANNEL_FIELDS = len(_CHANNEL_COLUMNS)


class SamplesCodec:
    """Columnar pack/unpack of SAMPLES and STREAM_FRAME payloads for fixed channel and valve
    counts: one precompiled ``struct`` call each way, columns moved by slice assignment. The
    per-cycle path of the board emulator and the serial device; agreement with the construct
    declaration is proved in tests/test_wire.py.

    Columns are lists in board order: ``raw`` (counts), ``value`` (SI), ``age_us``, ``status``
    per channel; ``commanded``, ``feedback``, ``v_status`` per valve.
    """

    __slots__ = ("n_channels", "n_valves", "_struct", "_flat", "size", "_valves_at", "_count_at")

    def __init__(self, n_channels: int, n_valves: int) -> None:
        self.n_channels = n_channels
        self.n_valves = n_valves
        fields = flatten(_SAMPLES, {"channels": n_channels, "valves": n_valves})
        self._struct = compile_fields(fields)
        self.size = self._struct.size
        self._flat: list[Any] = [0] * len(fields)
        #: index of the valve count among the flat values; byte offsets of the two counts
        self._valves_at = 3 + _CHANNEL_FIELDS * n_channels
        offsets = field_offsets(fields)
        self._count_at = (offsets["channels.count"], offsets["valves.count"])
        self._flat[2] = n_channels
        self._flat[self._valves_at] = n_valves

    def pack(self, board_time_us: int, flags: int, raw: list[int], value: Any, age_us: list[int],
             status: list[int], commanded: list[int], feedback: list[int], v_status: list[int]) -> bytes:
        flat = self._flat
        flat[0] = board_time_us
        flat[1] = flags
        end = self._valves_at
        flat[3:end:4] = raw
        flat[4:end:4] = value
        flat[5:end:4] = age_us
        flat[6:end:4] = status
        v0 = end + 1
        flat[v0::3] = commanded
        flat[v0 + 1::3] = feedback
        flat[v0 + 2::3] = v_status
        return self._struct.pack(*flat)

    def unpack(self, payload: bytes) -> tuple[int, int, tuple, tuple, tuple, tuple, tuple, tuple, tuple]:
        """(board_time_us, flags, raw, value, age_us, status, commanded, feedback, v_status).

        Raises ProtocolError when the payload is not a SAMPLES payload of these counts."""
        if len(payload) != self.size or payload[self._count_at[0]] != self.n_channels \
                or payload[self._count_at[1]] != self.n_valves:
            raise ProtocolError(
                f"SAMPLES: expected {self.n_channels} channels and {self.n_valves} valves "
                f"({self.size} bytes), got {len(payload)} bytes")
        flat = self._struct.unpack(payload)
        end = self._valves_at
        v0 = end + 1
        return (flat[0], flat[1], flat[3:end:4], flat[4:end:4], flat[5:end:4], flat[6:end:4],
                flat[v0::3], flat[v0 + 1::3], flat[v0 + 2::3])


def encode_fast(msg: Message) -> bytes:
    """Payload via the struct fast path (only for the per-cycle types; KeyError otherwise)."""
    return _FAST_ENCODERS[msg.TYPE](msg)


def decode_fast(msg_type: int, payload: bytes) -> Message:
    """Decode via the struct fast path (only for the per-cycle types; KeyError otherwise)."""
    return _FAST_DECODERS[msg_type](payload)

