"""The bounded telecommand queue between the links and the flight loop.

Producers (the UDP link's receiver thread, in-process callers, the stored sequence) offer whole
packets; the flight loop takes them all at the start of a cycle. Everything is bounded and sized
at start-up:

- at most ``capacity`` packets wait for the next cycle; a packet offered beyond that is
  *refused*: its request id is kept so the loop reports it (1/2, ``QUEUE_FULL``);
- at most ``refused_capacity`` refusals wait to be reported; beyond that a packet is *lost*: only
  counted, and the loop raises one ``TELECOMMANDS_LOST`` event per cycle with the count.

So no packet that reached the queue goes unreported. All methods are thread-safe (one lock,
held for a few list operations).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: packets waiting for the next cycle
COMMAND_QUEUE = 64
#: refusals waiting to be reported
REFUSED_RING = 4096
#: refusals reported per cycle at most (the rest wait in the ring for the next cycles): a flood
#: costs a cycle a bounded number of reports, not thousands
REFUSALS_PER_CYCLE = 256


@dataclass(frozen=True, slots=True)
class Refusal:
    """A packet that never entered the queue: its request id (u32, the first 4 bytes of the
    packet), the VerificationError code and the reason."""

    word: int
    code: int
    detail: str


def request_word_of(raw: bytes | bytearray | memoryview) -> int:
    """The request id of a packet: its first 4 bytes as a big-endian u32 (zero padded)."""
    head = bytes(raw[:4])
    return int.from_bytes(head + bytes(4 - len(head)), "big")


class TcQueue:
    """Bounded, thread-safe telecommand queue (see the module docstring).

    Counters: ``offered`` (every packet offered), ``queued``, ``refused`` (reported refusals),
    ``lost`` (beyond the refusal ring, or dropped by the operating system before the link read
    them; counted only).
    """

    def __init__(self, capacity: int = COMMAND_QUEUE, refused_capacity: int = REFUSED_RING) -> None:
        if capacity < 1 or refused_capacity < 1:
            raise ValueError("queue capacities must be >= 1")
        self.capacity = capacity
        self.refused_capacity = refused_capacity
        self._lock = threading.Lock()
        self._items: list[bytes] = []
        self._refusals: list[Refusal] = []
        self._lost = 0
        #: True when something waits for the loop (read without the lock: a stale False only
        #: delays the packet by one cycle)
        self.pending = False
        self.offered = 0
        self.queued = 0
        self.refused = 0
        self.lost = 0

    def offer(self, raw: bytes) -> bool:
        """Queue one packet for the next cycle. False when the queue is full (the refusal is
        reported by the loop, or counted as lost when the refusal ring is full too)."""
        with self._lock:
            self.offered += 1
            if len(self._items) < self.capacity:
                self._items.append(raw)
                self.queued += 1
                self.pending = True
                return True
            self._refuse_locked(Refusal(request_word_of(raw), 8, f"telecommand queue full ({self.capacity})"))
            return False

    def refuse(self, refusal: Refusal) -> None:
        """Report ``refusal`` at the next cycle (a command that could not even be encoded)."""
        with self._lock:
            self.offered += 1
            self._refuse_locked(refusal)

    def _refuse_locked(self, refusal: Refusal) -> None:
        if len(self._refusals) < self.refused_capacity:
            self._refusals.append(refusal)
            self.refused += 1
        else:
            self._lost += 1
            self.lost += 1
        self.pending = True

    def count_lost(self, n: int) -> None:
        """Packets lost before they reached the queue (the OS dropped them): counted, reported."""
        if n > 0:
            with self._lock:
                self._lost += n
                self.lost += n
                self.pending = True

    def take(self, max_refusals: int = REFUSALS_PER_CYCLE) -> tuple[list[bytes], list[Refusal], int]:
        """What one cycle handles: ``(packets, refusals, lost since the last take)``, oldest
        first: every queued packet, at most ``max_refusals`` refusals (the others wait)."""
        with self._lock:
            items, self._items = self._items, []
            refusals, self._refusals = self._refusals[:max_refusals], self._refusals[max_refusals:]
            lost, self._lost = self._lost, 0
            self.pending = bool(self._refusals)
        return items, refusals, lost

    def health(self) -> dict[str, int]:
        return {"offered": self.offered, "queued": self.queued, "refused": self.refused, "lost": self.lost}
