"""Board wire protocol messages: declarations, encode/decode, and a fast path for per-cycle ones.

The byte-level reference is docs/protocol.md; this module is its executable form. Every payload is
declared once with construct (the declaration and the oracle); callers see :func:`encode` /
:func:`decode` and plain dataclasses, never construct containers. The per-cycle messages
(:class:`ReadSamples`, :class:`Samples`, :class:`HilInject`, :class:`HilInjectReply`,
:class:`HilStep`, :class:`HilStepReply`) also have a ``struct`` fast path (:func:`encode_fast`,
:func:`decode_fast`); tests/test_wire.py proves both paths agree byte for byte.

Conventions: all integers big-endian; floats IEEE-754 big-endian, binary32 in per-cycle messages
and binary64 in the configuration tables; strings are a u8 length followed by UTF-8 (ASCII for ids). A response has type ``request | 0x80`` and the request's seq;
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

import functools
import struct
from dataclasses import fields
from typing import Any, Sequence

import construct as cs

from .codec import compile_fields, compile_struct, field_offsets, flatten
from .errors import ProtocolError
from .framing import MAX_PAYLOAD, FrameReader, RawFrame, crc16, encode_frame
# wire is the public face of the protocol: the enumerations and the message dataclasses live in
# wire_types and wire_messages (small modules) and are re-exported here.
from .wire_messages import (  # noqa: F401 - re-exported
    ChannelEntry, ChannelSample, CommandValve, CommandValveReply, DescribeChannel,
    DescribeModule, DescribeValve, FlashAbort, FlashAbortReply, FlashBegin, FlashBeginReply,
    FlashCommit, FlashCommitReply, FlashCrc, FlashCrcReply, FlashInfo, FlashInfoReply,
    FlashRead, FlashReadReply, FlashWrite, FlashWriteReply, HilEnter, HilEnterReply, HilInject,
    HilInjectReply, HilStep, HilStepReply, Identify, IdentifyReply, Message, ModuleEntry, Nak,
    Ping, PingReply, ReadSamples, ReadValves, Reset, ResetReply, Samples, SlotInfo, StreamFrame,
    StreamSamples, StreamSamplesReply, ValveEntry, ValveState, ValveStimulus, ValvesReply,
)
from .wire_types import (  # noqa: F401 - re-exported
    AGE_NEVER, BoardFlags, FEEDBACK_RELEASE, FEEDBACK_SCALE, FLASH_NAK_BASE, HIL_STEP_MINOR, MAX_BLOCK,
    MsgType, NO_MODULE, NO_SLOT, FlashRefusal, NakCode, PROTOCOL_MAJOR, PROTOCOL_MINOR, ResetKind,
    SampleState, SlotState, VALVE_STIMULUS_MINOR, ValveCommand, nak_code_of, reply_type,
)

__all__ = [
    "PROTOCOL_MAJOR", "PROTOCOL_MINOR", "MAX_PAYLOAD", "MAX_BLOCK", "MsgType", "NakCode", "FlashRefusal",
    "FLASH_NAK_BASE", "nak_code_of",
    "BoardFlags", "SlotState", "SampleState", "ValveCommand", "ResetKind", "NO_SLOT", "NO_MODULE",
    "AGE_NEVER", "FEEDBACK_SCALE", "Message", "encode", "decode", "encode_payload", "decode_payload",
    "payload_of", "inject_payload", "inject_fields",
    "encode_fast", "decode_fast", "FrameReader", "RawFrame", "crc16", "encode_frame",
    "Identify", "IdentifyReply", "Ping", "PingReply", "Reset", "ResetReply",
    "DescribeModule", "ModuleEntry", "DescribeChannel", "ChannelEntry", "DescribeValve", "ValveEntry",
    "ReadSamples", "Samples", "ChannelSample", "ValveState", "StreamSamples", "StreamSamplesReply",
    "StreamFrame", "CommandValve", "CommandValveReply", "ReadValves", "ValvesReply",
    "FlashInfo", "FlashInfoReply", "SlotInfo", "FlashBegin", "FlashBeginReply", "FlashWrite",
    "FlashWriteReply", "FlashRead", "FlashReadReply", "FlashCrc", "FlashCrcReply", "FlashCommit",
    "FlashCommitReply", "FlashAbort", "FlashAbortReply", "HilEnter", "HilEnterReply", "HilInject",
    "HilInjectReply", "ValveStimulus", "FEEDBACK_RELEASE", "VALVE_STIMULUS_MINOR", "feedback_counts",
    "HilStep", "HilStepReply", "HIL_STEP_MINOR",
    "Nak", "reply_type", "SamplesCodec",
]

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
    # Since 1.2: the request is a HIL_INJECT, the reply the SAMPLES read right after it.
    MsgType.HIL_STEP: cs.Struct(
        "time_us" / cs.Int64ub,
        "first" / cs.Int8ub,
        "values" / cs.PrefixedArray(cs.Int8ub, _f32),
        "valves" / cs.Optional(_ValveStimulus),
    ),
    MsgType.HIL_STEP_REPLY: cs.Struct(
        "board_time_us" / cs.Int64ub,
        "flags" / cs.Int8ub,
        "channels" / cs.PrefixedArray(cs.Int8ub, _ChannelSample),
        "valves" / cs.PrefixedArray(cs.Int8ub, _ValveState),
    ),
    MsgType.STREAM_FRAME: cs.Struct(
        "board_time_us" / cs.Int64ub,
        "flags" / cs.Int8ub,
        "channels" / cs.PrefixedArray(cs.Int8ub, _ChannelSample),
        "valves" / cs.PrefixedArray(cs.Int8ub, _ValveState),
    ),
    MsgType.NAK: cs.Struct("code" / cs.Int8ub, "request_type" / cs.Int8ub, "text" / _str8),
}


CLASSES: dict[int, type] = {
    cls.TYPE: cls  # type: ignore[attr-defined]
    for cls in (
        Identify, IdentifyReply, Ping, PingReply, Reset, ResetReply, DescribeModule, ModuleEntry,
        DescribeChannel, ChannelEntry, DescribeValve, ValveEntry, ReadSamples, Samples, StreamFrame,
        StreamSamples, StreamSamplesReply, CommandValve, CommandValveReply, ReadValves, ValvesReply,
        FlashInfo, FlashInfoReply, FlashBegin, FlashBeginReply, FlashWrite, FlashWriteReply,
        FlashRead, FlashReadReply, FlashCrc, FlashCrcReply, FlashCommit, FlashCommitReply,
        FlashAbort, FlashAbortReply, HilEnter, HilEnterReply, HilInject, HilInjectReply,
        HilStep, HilStepReply, Nak,
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
    if msg_type not in CLASSES:
        raise ProtocolError(f"unknown message type {msg_type:#04x}")
    decl, cls = DECLARATIONS[MsgType(msg_type)], CLASSES[msg_type]
    try:
        # IDENTIFY_REPLY only grows: a later 1.x board's appended fields are ignored (protocol.md).
        container = (decl if msg_type == MsgType.IDENTIFY_REPLY else _strict(decl)).parse(payload)
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


def payload_of(msg: Message) -> bytes:
    """The payload bytes of ``msg``: the fast path for per-cycle messages, construct otherwise.

    Raises:
        ProtocolError: as :func:`encode_payload` (construct path).
    """
    fast = _FAST_ENCODERS.get(msg.TYPE)
    return fast(msg) if fast is not None else encode_payload(msg)


def encode(msg: Message, seq: int) -> bytes:
    """The complete wire frame of ``msg`` with sequence number ``seq`` (0x00 delimiter included).

    Uses the fast path for per-cycle messages, construct otherwise.
    """
    return encode_frame(msg.TYPE, seq & 0xFF, payload_of(msg))


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
# Fast path (struct) for the per-cycle messages, its layouts compiled from the declarations above
# (hal/codec.py); tests check byte-for-byte agreement with construct for every field and edge.

_SAMPLES = DECLARATIONS[MsgType.SAMPLES]
_INJECT = DECLARATIONS[MsgType.HIL_INJECT]
#: board_time_us, flags, channel count: the SAMPLES / STREAM_FRAME fields before the channels
_S_SAMPLES_HEAD = compile_fields(flatten(_SAMPLES, {"channels": 0, "valves": 0})[:3])
_S_CHANNEL = compile_struct(_ChannelSample)
_S_VALVE = compile_struct(_ValveState)
#: time_us, first, value count: the HIL_INJECT fields before the values
_S_INJECT_HEAD = compile_fields(flatten(cs.Struct(*_INJECT.subcons[:3]), {"values": 0})[:3])
_INJECT_HEAD_SIZE = _S_INJECT_HEAD.size
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


def inject_payload(time_us: int, first: int, values: Sequence[float],
                   feedback: Sequence[int] | None = None, valve_first: int = 0) -> bytes:
    """The payload of a HIL_INJECT or HIL_STEP (they share it) without building the message:
    stimulus time ``time_us`` (us), ``values`` (SI, NaN = not stimulated) for the channels from
    ``first``, and with ``feedback`` (u16, see :func:`feedback_counts`) the 1.1 valve block for
    the valves from ``valve_first``. The per-cycle path of the serial device; the message
    encoders use it too.

    Raises:
        struct.error: a value does not fit its field.
    """
    n = len(values)
    if feedback is None:
        return _inject_struct(n, None).pack(time_us, first, n, *values)
    nv = len(feedback)
    return _inject_struct(n, nv).pack(time_us, first, n, *values, valve_first, nv, *feedback)


def _encode_inject_fast(msg: HilInject) -> bytes:
    v = msg.valves
    if v is None:
        return inject_payload(msg.time_us, msg.first, msg.values)
    return inject_payload(msg.time_us, msg.first, msg.values, v.feedback, v.first)


def inject_fields(payload: bytes, msg_type: int = MsgType.HIL_INJECT
                  ) -> tuple[int, int, tuple[float, ...], int, tuple[int, ...] | None]:
    """The fields of a HIL_INJECT or HIL_STEP payload without building the message: (time_us,
    first, values, valve_first, feedback), ``feedback`` None (and ``valve_first`` 0) for the
    1.0 form without a valve block. The inverse of :func:`inject_payload`; the per-cycle path
    of the board emulator, and what :func:`decode` builds the message from.

    Raises:
        ProtocolError: truncated payload, bad valve block or trailing bytes (names ``msg_type``).
    """
    try:
        t, first, n = _S_INJECT_HEAD.unpack_from(payload, 0)
        values_struct = _values_struct(n)
        off = _INJECT_HEAD_SIZE + values_struct.size
        size = len(payload)
        if size < off:
            raise struct.error(f"{n} values need {off} bytes, got {size}")
        values = values_struct.unpack_from(payload, _INJECT_HEAD_SIZE)
        if size == off:
            return t, first, values, 0, None
        # the 1.1 valve block
        end = off + 2 + 2 * payload[off + 1] if size >= off + 2 else off + 2
        if size < end:
            raise struct.error(f"valve block at payload offset {off}: expected valve_first u8, "
                               f"valve_count u8 and valve_count x u16 ({end - off} bytes), got "
                               f"{size - off} bytes")
        if size > end:
            raise struct.error(f"{size - end} unexpected trailing bytes at payload offset {end}")
        return t, first, values, payload[off], _feedback_struct(payload[off + 1]).unpack_from(payload, off + 2)
    except struct.error as exc:
        raise ProtocolError(f"{MsgType(msg_type).name}: malformed payload of {len(payload)} bytes: {exc}") from exc


def _decode_inject_fast(payload: bytes, cls: type = HilInject) -> Any:
    t, first, values, valve_first, feedback = inject_fields(payload, cls.TYPE)
    return cls(t, first, values, None if feedback is None else ValveStimulus(valve_first, feedback))


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
    MsgType.HIL_STEP: _encode_inject_fast,
    MsgType.HIL_STEP_REPLY: _encode_samples_fast,
}
_FAST_DECODERS: dict[int, Any] = {
    MsgType.READ_SAMPLES: _decode_empty(ReadSamples),
    MsgType.SAMPLES: lambda p: _decode_samples_into(Samples, p),
    MsgType.STREAM_FRAME: lambda p: _decode_samples_into(StreamFrame, p),
    MsgType.HIL_INJECT: _decode_inject_fast,
    MsgType.HIL_INJECT_REPLY: _decode_inject_reply_fast,
    MsgType.HIL_STEP: lambda p: _decode_inject_fast(p, HilStep),
    MsgType.HIL_STEP_REPLY: lambda p: _decode_samples_into(HilStepReply, p),
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

