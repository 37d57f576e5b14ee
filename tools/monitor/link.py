"""Link health as the ground sees it: packets and bytes received, packets per second, sequence
gaps per APID, CRC errors and malformed datagrams.

A sequence gap is a telemetry packet whose 14-bit sequence count is not the previous count of its
APID plus one (modulo 16384); ``packets_missing`` adds up how many counts each gap skipped. A
sender that restarts (a new run) shows as one gap. Telecommands (a capture records those it took)
carry their senders' counts, which say nothing of this link's losses: counted, not checked.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

#: packet sequence counts wrap at 2^14 (CCSDS 133.0-B-2)
SEQ_MODULO = 1 << 14

#: the packets/s figure is taken over this many wall seconds
RATE_WINDOW_S = 2.0


class LinkHealth:
    """Counters of what arrived. Not thread-safe: the caller locks."""

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.sequence_gaps = 0
        self.packets_missing = 0
        self.crc_errors = 0
        self.malformed = 0
        self.skipped_bytes = 0  #: capture sources: bytes of damaged ranges passed over
        self.last_wall: float | None = None  #: time.monotonic() of the last packet
        self._last_seq: dict[int, int] = {}
        self._per_apid: dict[int, int] = {}
        self._marks: deque[tuple[float, int]] = deque()  # (monotonic time, packets) samples

    def packet(self, apid: int, seq: int, size: int, now: float, telecommand: bool = False) -> None:
        """Count one good packet (CRC checked) of ``apid`` with sequence count ``seq`` (a
        ``telecommand``'s count is not checked for gaps)."""
        self.packets += 1
        self.bytes += size
        self._per_apid[apid] = self._per_apid.get(apid, 0) + 1
        self.last_wall = now
        if telecommand:
            return
        last = self._last_seq.get(apid)
        if last is not None:
            skipped = (seq - last - 1) % SEQ_MODULO
            if skipped:
                self.sequence_gaps += 1
                self.packets_missing += skipped
        self._last_seq[apid] = seq
        self.last_wall = now

    def rate(self, now: float | None = None) -> float:
        """Packets per wall second over the last :data:`RATE_WINDOW_S` seconds."""
        now = time.monotonic() if now is None else now
        marks = self._marks
        marks.append((now, self.packets))
        while len(marks) > 2 and marks[1][0] <= now - RATE_WINDOW_S:
            marks.popleft()
        t0, n0 = marks[0]
        return (self.packets - n0) / (now - t0) if now - t0 > 0.05 else 0.0

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "packets_per_s": round(self.rate(now), 1),
            "sequence_gaps": self.sequence_gaps,
            "packets_missing": self.packets_missing,
            "crc_errors": self.crc_errors,
            "malformed": self.malformed,
            "skipped_bytes": self.skipped_bytes,
            "last_packet_age_s": None if self.last_wall is None else round(now - self.last_wall, 3),
            "packets_by_apid": {str(k): v for k, v in sorted(self._per_apid.items())},
        }
