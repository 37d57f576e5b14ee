"""Acceptance checks of one telecommand packet, layer by layer (docs/commanding.md).

:func:`parse` takes the bytes of one packet as received and returns a :class:`Request` (request
id and the decoded command) or raises :class:`Rejection` with the VerificationError code of the
first check that failed, in this order:

1. ``WRONG_LENGTH``: shorter than a primary header;
2. ``BAD_HEADER``: packet version not 0, not a TC, no secondary header, sequence flags not 3;
3. ``WRONG_LENGTH``: the length field disagrees with the bytes received, or is below 13;
4. ``BAD_CRC``: the CRC-16/CCITT-FALSE over the whole packet is not 0;
5. ``ILLEGAL_APID``: the APID is not 100;
6. ``BAD_HEADER``: PUS version not 2;
7. ``UNKNOWN_COMMAND``: no telecommand has this service, subtype (and function id);
8. ``WRONG_LENGTH``: the application data is shorter or longer than its declaration;
9. ``BAD_ARGUMENT``: a field the declaration cannot take (an unknown FDIR mode, bad text).

The checks that need the flight software's state (a valve index, an event id, a parameter,
the mode) are made by :mod:`.service` after these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import construct as cs

from ..errors import TelemetryError
from ..telemetry import packets as P
from .queue import request_word_of

_E = P.VerificationError


class Rejection(Exception):
    """A telecommand failed a check: ``code`` (VerificationError) and ``detail`` (the reason)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = int(code)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Request:
    """An accepted packet: its request id (u32), APID, sequence count, source id, the decoded
    command (a tc_packets dataclass) and the packet's definition name."""

    word: int
    apid: int
    seq: int
    source_id: int
    command: Any
    name: str


def parse(raw: bytes | bytearray | memoryview) -> Request:
    """Check and decode one telecommand packet. Raises :class:`Rejection` (see the module doc)."""
    buf = bytes(raw)
    n = len(buf)
    word = request_word_of(buf)
    if n < P.PRIMARY_HEADER_SIZE:
        raise Rejection(_E.WRONG_LENGTH, f"{n} bytes, shorter than a primary header ({P.PRIMARY_HEADER_SIZE})")
    b0 = buf[0]
    if b0 >> 5 != P.PACKET_VERSION:
        raise Rejection(_E.BAD_HEADER, f"byte 0: packet version {b0 >> 5}, expected 0")
    if not b0 & 0x10:
        raise Rejection(_E.BAD_HEADER, "byte 0: packet type 0 (TM), expected 1 (TC)")
    if not b0 & 0x08:
        raise Rejection(_E.BAD_HEADER, "byte 0: secondary header flag 0, expected 1")
    if buf[2] >> 6 != P.SEQ_UNSEGMENTED:
        raise Rejection(_E.BAD_HEADER, f"byte 2: sequence flags {buf[2] >> 6}, expected 3 (unsegmented)")
    total = ((buf[4] << 8) | buf[5]) + 7
    if total != n:
        raise Rejection(_E.WRONG_LENGTH, f"bytes 4-5: length field gives {total} bytes, received {n}")
    if total < P.MIN_TC_SIZE:
        raise Rejection(_E.WRONG_LENGTH, f"bytes 4-5: {total} bytes, below the smallest telecommand ({P.MIN_TC_SIZE})")
    crc = P.crc16(buf[:-2])
    if crc != int.from_bytes(buf[-2:], "big"):
        raise Rejection(_E.BAD_CRC, f"byte {n - 2}: CRC {buf[-2:].hex()}, computed {crc:04x}")
    apid = word >> 16 & 0x7FF
    if apid != P.APID_COMMAND:
        raise Rejection(_E.ILLEGAL_APID, f"APID {apid}, expected {P.APID_COMMAND}")
    if buf[6] >> 4 != P.PUS_VERSION:
        raise Rejection(_E.BAD_HEADER, f"byte 6: PUS version {buf[6] >> 4}, expected 2")
    service, subtype = buf[7], buf[8]
    source_id = (buf[9] << 8) | buf[10]
    body = buf[P.PRIMARY_HEADER_SIZE + P.TC_SECONDARY_HEADER_SIZE:-2]
    key = int.from_bytes(body[:2], "big") if len(body) >= 2 else None
    pdef = P.find_definition(P.PacketType.TC, service, subtype, key)
    if pdef is None or pdef.packet_type != P.PacketType.TC:
        what = f"service {service}/{subtype}" + (f" function {key}" if service == 8 and key is not None else "")
        raise Rejection(_E.UNKNOWN_COMMAND, f"no telecommand {what}")
    try:
        command = pdef.from_container(pdef.body.parse(body), subtype)
    except (cs.StreamError, cs.TerminatedError) as exc:
        raise Rejection(_E.WRONG_LENGTH, f"{pdef.name}: {len(body)} bytes of data do not fit its layout") from exc
    except (cs.ConstructError, TelemetryError, ValueError, UnicodeError) as exc:
        raise Rejection(_E.BAD_ARGUMENT, f"{pdef.name}: {exc}") from exc
    return Request(word, apid, word & 0x3FFF, source_id, command, pdef.name)
