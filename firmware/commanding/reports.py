"""Service 1 verification reports, built on the flight loop's fast path.

The bodies are those of ``VERIFY_SUCCESS_BODY`` and ``VERIFY_FAILURE_BODY``
(:mod:`hullwatch.firmware.telemetry.tc_packets`): the request id (u32), and for a failure a u16
error code and the reason as u8 length + UTF-8 text. They are packed with ``struct`` (a few us
instead of ~100 us through construct, which matters in a flood of refused telecommands); a test
proves the bytes equal the declaration's for every stage.
"""

from __future__ import annotations

import struct

from ..telemetry import packets as P
from ..telemetry.emitter import TelemetryEmitter

_WORD = struct.Struct(">I")
_FAIL = struct.Struct(">IHB")
#: the reason is cut to this many bytes (u8 length)
DETAIL_MAX = 255

_FAILURE_STAGES = frozenset((P.VerificationStage.ACCEPTANCE_FAILURE, P.VerificationStage.START_FAILURE,
                             P.VerificationStage.COMPLETION_FAILURE))


def verification_body(stage: int, word: int, code: int = 0, detail: str = "") -> bytes:
    """The application data of a 1/``stage`` report for request id ``word``."""
    if stage not in _FAILURE_STAGES:
        return _WORD.pack(word)
    text = detail.encode("utf-8")[:DETAIL_MAX].decode("utf-8", "ignore").encode("utf-8")
    return _FAIL.pack(word, code, len(text)) + text


class Reporter:
    """Sends verification reports through the flight software's telemetry emitter.

    Counters: ``reports`` sent by stage subtype."""

    def __init__(self, tm: TelemetryEmitter) -> None:
        self.tm = tm
        self.reports = [0] * 9

    def verify(self, stage: P.VerificationStage, word: int, t: float, code: int = 0, detail: str = "") -> None:
        """Send the 1/``stage`` report of request ``word`` stamped at mission time ``t``."""
        self.reports[stage] += 1
        self.tm.emit_body(P.APID_COMMAND, 1, int(stage), verification_body(stage, word, code, detail), t)

    def report(self, data: object, t: float) -> None:
        """Any other command-related report (17/2, 20/2) through its declaration."""
        self.tm.emit(data, t)
