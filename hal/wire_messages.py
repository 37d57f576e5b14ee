"""Board wire protocol: one dataclass per message, field names as in the declarations of
:mod:`hullwatch.hal.wire` (which re-exports every name here; import them from there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .wire_types import FEEDBACK_SCALE, PROTOCOL_MAJOR, PROTOCOL_MINOR, MsgType, NakCode, ResetKind

__all__ = ["Message", "ChannelSample", "ValveState", "SlotInfo", "Identify", "IdentifyReply", "Ping", "PingReply", "Reset", "ResetReply", "DescribeModule", "ModuleEntry", "DescribeChannel", "ChannelEntry", "DescribeValve", "ValveEntry", "ReadSamples", "Samples", "StreamFrame", "StreamSamples", "StreamSamplesReply", "CommandValve", "CommandValveReply", "ReadValves", "ValvesReply", "FlashInfo", "FlashInfoReply", "FlashBegin", "FlashBeginReply", "FlashWrite", "FlashWriteReply", "FlashRead", "FlashReadReply", "FlashCrc", "FlashCrcReply", "FlashCommit", "FlashCommitReply", "FlashAbort", "FlashAbortReply", "HilEnter", "HilEnterReply", "ValveStimulus", "HilInject", "HilInjectReply", "HilStep", "HilStepReply", "Nak"]

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
class HilStep(Message):
    """Since 1.2: a HIL_INJECT (same fields, same checks) whose reply is the SAMPLES the board
    would send to a READ_SAMPLES right after it: one exchange per HIL cycle."""

    TYPE = MsgType.HIL_STEP
    _NESTED = {"valves": ValveStimulus}
    time_us: int
    first: int
    values: tuple[float, ...]
    valves: ValveStimulus | None = None


@_msg
class HilStepReply(Message):
    """The SAMPLES after a HIL_STEP's stimulus (the layout of :class:`Samples`)."""

    TYPE = MsgType.HIL_STEP_REPLY
    _NESTED = {"channels": ChannelSample, "valves": ValveState}
    board_time_us: int
    flags: int
    channels: tuple[ChannelSample, ...]
    valves: tuple[ValveState, ...]


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
