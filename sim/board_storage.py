"""Byte-addressed persistent storage for the emulated board's configuration flash.

:class:`FileStorage` keeps it in a file (it survives restarts), :class:`MemoryStorage` in RAM,
and :class:`PowerCutStorage` wraps either to model the power failing part-way through a write
(:class:`PowerCut`), which is how tests/test_power_fail.py proves the commit rule
(docs/config-image.md, "Two slots and the commit rule").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from .errors import SimError

ERASED = 0xFF  #: the value of an erased flash byte


class FlashFileError(SimError):
    """The flash file is missing, not a flash file, or does not match what was asked for."""


class PowerCut(BaseException):
    """Raised by :class:`PowerCutStorage` when the modelled power fails. A BaseException so the
    emulator's request handlers (which catch Exception to send NAKs) cannot swallow it."""



class FlashStorage(Protocol):
    """Byte-addressed persistent storage. ``write`` may be cut short by a power failure."""

    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: bytes) -> None: ...
    def close(self) -> None: ...


class FileStorage:
    """A flash file. Every write goes to the file at once (no caching), so a fresh instance on
    the same path after a :class:`PowerCut` sees exactly the bytes that were written."""

    def __init__(self, path: str | Path, create_size: int | None = None) -> None:
        self.path = Path(path)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create_size is not None else 0)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError as exc:
            raise FlashFileError(f"{self.path}: no such flash file") from exc
        except FileExistsError as exc:
            raise FlashFileError(f"{self.path}: exists already") from exc
        if create_size is not None:
            os.pwrite(self._fd, bytes([ERASED]) * create_size, 0)

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise FlashFileError(f"{self.path}: truncated; {length} bytes at offset {offset} "
                                 f"expected, {len(data)} there")
        return data

    def write(self, offset: int, data: bytes) -> None:
        os.pwrite(self._fd, data, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PowerCutStorage:
    """Wraps a storage; lets ``budget`` bytes of writes through, then cuts the power.

    The write that exhausts the budget lands only its first bytes (a torn write) and raises
    :class:`PowerCut`; every later write raises without writing. ``budget=None`` never cuts
    (use it to record ``writes``, the (offset, length) of every write, to plan the cuts).
    """

    def __init__(self, inner: FlashStorage, budget: int | None = None) -> None:
        self.inner = inner
        self.budget = budget
        self.written = 0
        self.writes: list[tuple[int, int]] = []
        self.cut = False

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        if self.cut:
            raise PowerCut("power is off")
        if self.budget is not None and self.written + len(data) > self.budget:
            keep = self.budget - self.written
            if keep > 0:
                self.inner.write(offset, data[:keep])
            self.written += keep
            self.cut = True
            raise PowerCut(f"power cut after {self.written} bytes written")
        self.inner.write(offset, data)
        self.written += len(data)
        self.writes.append((offset, len(data)))

    def close(self) -> None:
        self.inner.close()


class MemoryStorage:
    """A flash storage in RAM (a board whose flash is not kept in a file)."""

    def __init__(self, size: int) -> None:
        self._data = bytearray(b"\xff" * size)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset:offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self._data[offset:offset + len(data)] = data

    def close(self) -> None:
        pass
