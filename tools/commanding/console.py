"""The outcome of every telecommand on the console timeline of ``hullwatch run``.

:class:`CommandConsole` is a telemetry sink that also receives the telecommands (as a capture
does): it remembers what each request asked for and, when its last verification report goes out
(1/2, 1/4, 1/7 or 1/8), writes one line through ``note(t, text)`` (the run's Timeline), e.g.
``telecommand 8/1 valve 4 closed (zarya-usos), seq 1: completed``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

from ...firmware.errors import PacketDecodeError, TelemetryError
from ...firmware.telemetry import packets as P
from ...firmware.telemetry.fastcodec import fast_decode
from .describe import describe_command

#: requests remembered while waiting for their last report (every table is bounded)
MAX_OPEN = 1024
_END = frozenset((2, 4, 7, 8))


class CommandConsole:
    """A sink: ``note(t_mission, text)`` for each telecommand that ended. Never raises."""

    records_telecommands = True

    def __init__(self, note: Callable[[float, str], None], epoch_utc: float,
                 valve_ids: Sequence[str] | None = None) -> None:
        self.note = note
        self.epoch = epoch_utc
        self.valve_ids = list(valve_ids) if valve_ids is not None else None
        self._open: OrderedDict[int, str] = OrderedDict()
        self.errors = 0

    def write(self, packet: bytes) -> None:
        if len(packet) < 6 or packet[1] != P.APID_COMMAND or packet[0] & 0x07:
            return
        try:
            p = fast_decode(packet, verify_crc=False)
        except (PacketDecodeError, TelemetryError):
            self.errors += 1
            return
        word = int.from_bytes(packet[:4], "big")
        if p.packet_type == P.PacketType.TC:
            self._open[word] = f"{p.service}/{p.subtype} {describe_command(p.data, self.valve_ids)}"
            while len(self._open) > MAX_OPEN:
                self._open.popitem(last=False)
            return
        d = p.data
        if not isinstance(d, P.VerificationReport) or d.stage not in _END:
            return
        rid = d.request_word if d.request_word is not None else P.request_word(d.request_apid, d.request_seq)
        what = self._open.pop(rid, None) or "(a packet not taken: malformed or queue full)"
        if d.failed:
            stage = {2: "refused", 4: "not started", 8: "failed"}[int(d.stage)]
            try:
                code = P.VerificationError(d.error_code).name
            except ValueError:
                code = str(d.error_code)
            outcome = f"{stage}: {code}"
            outcome += f" ({d.detail})" if d.detail else ""
        else:
            outcome = "completed"
        self.note(p.time_utc - self.epoch, f"telecommand {what}, seq {d.request_seq}: {outcome}")

    def close(self) -> None:
        pass
