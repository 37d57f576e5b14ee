"""Board wire protocol: the version, limits, sentinels and enumerations (docs/protocol.md).

Part of :mod:`hullwatch.hal.wire`, which re-exports every name here; import them from there.
"""

from __future__ import annotations

import enum

__all__ = ["PROTOCOL_MAJOR", "PROTOCOL_MINOR", "VALVE_STIMULUS_MINOR", "HIL_STEP_MINOR", "MAX_BLOCK", "NO_SLOT", "NO_MODULE", "AGE_NEVER", "FEEDBACK_SCALE", "FEEDBACK_RELEASE", "MAX_STIMULUS_US", "MsgType", "reply_type", "NakCode", "FlashRefusal", "FLASH_NAK_BASE", "nak_code_of", "BoardFlags", "SlotState", "SampleState", "ValveCommand", "ResetKind"]

#: Protocol version this host and the emulator speak. Majors must match; minors only add
#: (docs/protocol.md, "Version negotiation" and "Version history").
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 2
#: First minor whose HIL_INJECT may carry the valve-feedback block (:class:`ValveStimulus`). A host
#: sends the block only to a board whose IDENTIFY_REPLY minor is at least this; a 1.0 board would
#: NAK it BAD_LENGTH.
VALVE_STIMULUS_MINOR = 1
#: First minor with HIL_STEP (:class:`HilStep`): inject and read back in one exchange. A host
#: sends it only to a board whose IDENTIFY_REPLY minor is at least this (an older board NAKs it
#: UNKNOWN_TYPE) and otherwise sends HIL_INJECT then READ_SAMPLES.
HIL_STEP_MINOR = 2
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
#: Latest HIL stimulus time a board accepts, us (2^63 - 1): its clock goes on from the stimulus
#: time when HIL mode ends and must not overflow its u64 (a later time is NAKed BAD_ARGUMENT).
MAX_STIMULUS_US = (1 << 63) - 1


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
    HIL_STEP = 0x32  #: since 1.2: HIL_INJECT and READ_SAMPLES in one exchange

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
    HIL_STEP_REPLY = 0xB2

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
