"""Packet framing: the CCSDS primary header, the PUS-C TM and TC secondary headers, the packet
error control (CRC-16/CCITT-FALSE), their sizes and constants, each declared once with construct.

:mod:`.packets` builds every packet on these (and re-exports every name here); the layout of
each field is in its declaration and in docs/telemetry.md.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

import construct as cs
import anycrc
import crcmod.predefined
from construct import this

from .fields import field

# ----------------------------------------------------------------------------------------------
# Constants


class PacketType(enum.IntEnum):
    TM = 0
    TC = 1


PACKET_VERSION = 0
PUS_VERSION = 2
SEQ_UNSEGMENTED = 3
SEQ_COUNT_MODULO = 1 << 14

#: APIDs. Commands to the flight software and their verification/alive reports use APID_COMMAND.
APID_HOUSEKEEPING = 101  #: housekeeping summary (SID 1) and layout report (SID 3)
APID_RAW = 102  #: raw sensor samples (SID 2), one packet every cycle
APID_EVENT = 103  #: FDIR and executive events

SID_HOUSEKEEPING = 1
SID_RAW_SAMPLES = 2
SID_LAYOUT = 3


PRIMARY_HEADER_SIZE = 6
TM_SECONDARY_HEADER_SIZE = 13
TC_SECONDARY_HEADER_SIZE = 5
PEC_SIZE = 2
MIN_TM_SIZE = PRIMARY_HEADER_SIZE + TM_SECONDARY_HEADER_SIZE + PEC_SIZE
MIN_TC_SIZE = PRIMARY_HEADER_SIZE + TC_SECONDARY_HEADER_SIZE + PEC_SIZE
MAX_PACKET_SIZE = PRIMARY_HEADER_SIZE + 65536
SUBJECT_SIZE = 16

_SECONDARY_SIZE = {PacketType.TM: TM_SECONDARY_HEADER_SIZE, PacketType.TC: TC_SECONDARY_HEADER_SIZE}

#: crcmod's CRC-16/CCITT-FALSE, used by the construct declaration (the test oracle).
crc16_ccitt_false: Callable[[bytes], int] = crcmod.predefined.mkCrcFun("crc-ccitt-false")

#: CRC-16/CCITT-FALSE of a contiguous buffer (poly 0x1021, init 0xFFFF, no reflection, no final
#: xor; the catalogue calls it CRC-16/IBM-3740), ``crc16(buf) -> int``: every encoder and reader
#: uses this one. anycrc's C implementation processes several bytes per step: 0.34 us for a
#: 368-byte raw-samples packet where ``binascii.crc_hqx`` (one byte per step) takes 1.3 us, and the
#: flight loop computes it for every packet. Tests prove it equals crcmod and ``binascii``.
crc16: Callable[[bytes | bytearray | memoryview], int] = anycrc.Model("CRC16-IBM-3740").calc


# ----------------------------------------------------------------------------------------------
# Headers


def _data_length(ctx: Any) -> int:
    # Building: ctx holds the caller's dicts, so index rather than use attributes.
    return _SECONDARY_SIZE[ctx["packet_id"]["packet_type"]] + len(ctx._["data"]) + PEC_SIZE - 1


PRIMARY_HEADER = cs.Struct(
    field("packet_id", cs.BitStruct(
        field("version", cs.Const(PACKET_VERSION, cs.BitsInteger(3)), doc="packet version number, 0"),
        field("packet_type", cs.BitsInteger(1), doc="0 TM, 1 TC"),
        field("sec_hdr_flag", cs.Const(1, cs.BitsInteger(1)), doc="secondary header present, always 1"),
        field("apid", cs.BitsInteger(11), doc="application process id"),
    ), doc="packet identification"),
    field("seq_ctrl", cs.BitStruct(
        field("seq_flags", cs.BitsInteger(2), doc="3: unsegmented"),
        field("seq_count", cs.BitsInteger(14), doc="per-APID sequence count, wraps at 16384"),
    ), doc="packet sequence control"),
    field("data_length", cs.Rebuild(cs.Int16ub, _data_length),
          doc="octets in the packet data field (secondary header, data, CRC) minus 1"),
)

TM_SECONDARY_HEADER = cs.Struct(
    field("version_status", cs.BitStruct(
        field("pus_version", cs.Const(PUS_VERSION, cs.BitsInteger(4)), doc="PUS version number, 2 (PUS-C)"),
        field("time_ref_status", cs.BitsInteger(4), doc="spacecraft time reference status"),
    )),
    field("service", cs.Int8ub, doc="service type"),
    field("subtype", cs.Int8ub, doc="message subtype"),
    field("msg_counter", cs.Int16ub, doc="message type counter, per service/subtype, wraps"),
    field("dest_id", cs.Int16ub, doc="destination id"),
    field("cuc_seconds", cs.Int32ub, "s", "CUC coarse time: seconds since 1970-01-01T00:00:00Z"),
    field("cuc_fraction", cs.Int16ub, "1/65536 s", "CUC fine time"),
)

TC_SECONDARY_HEADER = cs.Struct(
    field("version_ack", cs.BitStruct(
        field("pus_version", cs.Const(PUS_VERSION, cs.BitsInteger(4)), doc="PUS version number, 2 (PUS-C)"),
        field("ack_flags", cs.BitsInteger(4), doc="acknowledgement flags: 8 acceptance, 1 completion"),
    )),
    field("service", cs.Int8ub, doc="service type"),
    field("subtype", cs.Int8ub, doc="message subtype"),
    field("source_id", cs.Int16ub, doc="source id"),
)

FRAME = cs.Struct(
    "frame" / cs.RawCopy(cs.Struct(
        "primary" / PRIMARY_HEADER,
        "secondary" / cs.Switch(this.primary.packet_id.packet_type, {
            PacketType.TM: TM_SECONDARY_HEADER, PacketType.TC: TC_SECONDARY_HEADER,
        }),
        "data" / cs.Bytes(lambda ctx: ctx.primary.data_length + 1 - PEC_SIZE
                          - _SECONDARY_SIZE[ctx.primary.packet_id.packet_type]),
    )),
    "pec" / cs.Checksum(cs.Int16ub, crc16_ccitt_false, this.frame.data),
)
