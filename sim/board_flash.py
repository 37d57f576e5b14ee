"""The board's configuration flash: two image slots (A/B) in a file, boot selection, the commit rule.

The board emulator keeps its configuration here so it survives restarts, and delegates every
config-flash request to :class:`BoardFlash` (begin, write, read, check, commit, abort, info). A
request the board refuses raises :class:`FlashRefused` with a :class:`FlashRefusal` code and a
reason text, which the emulator sends back as a NAK. docs/config-image.md is the reference.

File layout (little-endian)::

    0x000  superblock (128 bytes): magic "HWFL", layout version, max block, slot size, board id,
           HMAC key (length + 64 bytes), CRC-32. Written once, when the board is made.
    0x080  slot A header (32 bytes, 20 used)
    0x0A0  slot B header
    0x100  slot A data (slot_size bytes)
    ...    slot B data (slot_size bytes)

Slot header (20 bytes)::

    0 magic "HWSL" | 4 length u32 | 8 image_crc u32 | 12 generation u32 | 16 header_crc u32
    header_crc = CRC-32 of bytes 0..15; an erased header is all 0xFF.

The commit rule (why a power cut at any byte is safe):

1. FLASH_BEGIN picks the inactive slot (the one not booted; A when none is) and erases its
   header. The active slot is never written during a flash.
2. FLASH_WRITE blocks go to the inactive slot's data area only.
3. FLASH_COMMIT checks the stored bytes (CRC-32 as declared at begin, the image's own CRC-32,
   structure, HMAC tag when the board holds a key, generation above the active one), writes
   header bytes 0..11 (magic, length, image CRC), then, as the single final write, bytes 12..19
   (generation and header CRC).
4. Boot: a slot is valid when its magic and header CRC match, its length fits the slot, the
   CRC-32 of its data equals the header's image CRC, and the image decodes and validates (tag
   checked when the board holds a key). The board runs the valid slot with the highest
   generation; with none valid it runs unconfigured.

Until the last byte of step 3's final write lands the header CRC cannot match (it covers the
generation), so the new slot is invalid and boot keeps the old one; once it lands the new slot
is valid with a higher generation and wins. The old slot is untouched either way.

Power cuts are modelled at the storage level: :class:`PowerCutStorage` lets a set number of
bytes through and then "cuts the power" (raises :class:`PowerCut`, a BaseException so no
handler in the emulator swallows it); a fresh BoardFlash on the same file is the reboot.
"""

from __future__ import annotations

import enum
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import construct as cs

from ..hal.config_image import (
    BoardConfig,
    ChannelConfig,
    ConfigImageError,
    ImageTagError,
    ModuleConfig,
    ValveConfig,
    check_key,
    crc32,
    decode_image,
    encode_image,
    image_crc,
    validate_config,
)
from ..hal.interfaces import ChannelKind, ValveKind
from .errors import SimError

DEFAULT_BOARD_ID = "hwb-emu-0001"  #: the emulator's default board (examples/board.toml targets it)
DEFAULT_SLOT_SIZE = 16 * 1024  #: bytes per slot
DEFAULT_MAX_BLOCK = 1024  #: largest FLASH_WRITE / FLASH_READ block, bytes
MAX_KEY_SIZE = 64

SUPERBLOCK_SIZE = 128
HEADER_AREA = 32  #: bytes reserved per slot header
SLOT_HEADER_SIZE = 20
SLOT_HEADERS_AT = SUPERBLOCK_SIZE
DATA_AT = SUPERBLOCK_SIZE + 2 * HEADER_AREA
ERASED = 0xFF
SLOT_NAMES = ("A", "B")

_SUPERBLOCK = cs.Struct(
    "body" / cs.RawCopy(cs.Struct(
        "magic" / cs.Const(b"HWFL"),
        "layout_version" / cs.Const(1, cs.Int16ul),
        "max_block" / cs.Int16ul,
        "slot_size" / cs.Int32ul,
        "board_id" / cs.PaddedString(32, "ascii"),
        "key" / cs.Prefixed(cs.Int8ul, cs.GreedyBytes),
        "padding" / cs.Padding(lambda ctx: MAX_KEY_SIZE - len(ctx.key)),
    )),
    "crc32" / cs.Checksum(cs.Int32ul, zlib.crc32, cs.this.body.data),
    "fill" / cs.Padding(SUPERBLOCK_SIZE - 4 - 4 - 2 - 2 - 4 - 32 - 1 - MAX_KEY_SIZE),
)

#: Slot header. ``generation`` and ``header_crc`` are the commit write (bytes 12..19).
SLOT_HEADER = cs.Struct(
    "magic" / cs.Const(b"HWSL"),
    "length" / cs.Int32ul,
    "image_crc" / cs.Int32ul,
    "generation" / cs.Int32ul,
    "header_crc" / cs.Int32ul,
)
_COMMIT_FIELDS_AT = 12


class FlashFileError(SimError):
    """The flash file is missing, not a flash file, or does not match what was asked for."""


class PowerCut(BaseException):
    """Raised by :class:`PowerCutStorage` when the modelled power fails. A BaseException so the
    emulator's request handlers (which catch Exception to send NAKs) cannot swallow it."""


class FlashRefusal(enum.IntEnum):
    """Why the board refused a flash request (carried in the NAK with a reason text)."""

    NO_SESSION = 1  #: write/commit without FLASH_BEGIN
    BAD_LENGTH = 2  #: image empty or larger than a slot; block empty or larger than max_block
    OUT_OF_ORDER = 3  #: a block starts past the bytes written so far (a gap)
    OUT_OF_RANGE = 4  #: a block or read runs past the image length or the slot
    INCOMPLETE = 5  #: commit before every byte of the image was written
    CRC_MISMATCH = 6  #: the stored bytes' CRC-32 is not the one declared at FLASH_BEGIN
    INVALID_IMAGE = 7  #: the image does not decode or validate (names the field)
    TAG_MISSING = 8  #: the board holds a key and the image carries no HMAC tag
    TAG_MISMATCH = 9  #: the HMAC tag does not match the board's key
    STALE_GENERATION = 10  #: the image's generation is not above the active one
    BAD_SLOT = 11  #: a slot number other than 0 (A) or 1 (B)


class FlashRefused(SimError):
    """The board refuses a flash request; the emulator answers with a NAK (``code``, ``reason``).
    The active image is never affected by a refused request."""

    def __init__(self, code: FlashRefusal, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Storage


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


# --------------------------------------------------------------------------------------------
# The board's view


@dataclass(frozen=True, slots=True)
class SlotState:
    """What boot found in one slot. ``problem`` says why it is not bootable (None when valid)."""

    slot: int
    valid: bool
    generation: int
    length: int
    crc32: int
    problem: str | None = None
    config: BoardConfig | None = None

    @property
    def name(self) -> str:
        return SLOT_NAMES[self.slot]


@dataclass(frozen=True, slots=True)
class FlashInfo:
    """Answer to FLASH_INFO. ``active_slot`` None: no valid image (generation, length, crc 0)."""

    board_id: str
    active_slot: int | None
    generation: int
    length: int
    crc32: int
    slot_size: int
    max_block: int
    key_held: bool
    session_slot: int | None
    session_written: int


@dataclass(slots=True)
class _Session:
    slot: int
    length: int
    crc32: int
    written: int = 0


class BoardFlash:
    """The configuration flash of one board, on a :class:`FlashStorage`.

    Constructing one is a boot: it reads the superblock and picks the active slot. Requests
    raise :class:`FlashRefused` when the board says no, :class:`PowerCut` when the storage dies.
    """

    def __init__(self, storage: FlashStorage) -> None:
        self._storage = storage
        raw = storage.read(0, SUPERBLOCK_SIZE)
        try:
            sb = _SUPERBLOCK.parse(raw)
        except cs.ConstructError as exc:
            raise FlashFileError(f"not a hullwatch board flash (superblock: {exc})") from exc
        self.board_id: str = sb.body.value.board_id
        self.slot_size: int = sb.body.value.slot_size
        self.max_block: int = sb.body.value.max_block
        self._key: bytes | None = bytes(sb.body.value.key) or None
        self._session: _Session | None = None
        self.slots: tuple[SlotState, SlotState] = (self._inspect(0), self._inspect(1))
        self.active: SlotState | None = self._select()

    # -- making and opening -------------------------------------------------------------------

    @classmethod
    def format(cls, storage: FlashStorage, board_id: str = DEFAULT_BOARD_ID, *,
               key: bytes | None = None, slot_size: int = DEFAULT_SLOT_SIZE,
               max_block: int = DEFAULT_MAX_BLOCK,
               factory_config: BoardConfig | None = None) -> "BoardFlash":
        """Write a fresh superblock and erased slots (what the factory does), then, if given,
        flash ``factory_config`` as generation 1 (tagged with ``key``). Not power-fail safe."""
        if key is not None:
            check_key(key)
            if len(key) > MAX_KEY_SIZE:
                raise ConfigImageError(f"HMAC key is {len(key)} bytes; at most {MAX_KEY_SIZE}")
        if not 1 <= max_block <= 0xFFFF or slot_size < max_block:
            raise ValueError(f"bad geometry: slot_size {slot_size}, max_block {max_block}")
        storage.write(0, _SUPERBLOCK.build(dict(body=dict(value=dict(
            max_block=max_block, slot_size=slot_size, board_id=board_id, key=key or b"")))))
        storage.write(SLOT_HEADERS_AT, bytes([ERASED]) * (2 * HEADER_AREA))
        flash = cls(storage)
        if factory_config is not None:
            image = encode_image(factory_config.with_generation(1), key=key)
            flash.flash_image(image)
        return flash

    @classmethod
    def open(cls, path: str | Path, *, board_id: str = DEFAULT_BOARD_ID,
             key: bytes | None = None, factory_config: BoardConfig | None = None,
             slot_size: int = DEFAULT_SLOT_SIZE, max_block: int = DEFAULT_MAX_BLOCK) -> "BoardFlash":
        """Boot from the flash file at ``path``, making it first if it does not exist (with
        ``board_id``, ``key`` and ``factory_config`` as generation 1; by default the
        :func:`factory_config` of the soyuz-ms09 station).

        Raises FlashFileError if an existing file is not a flash file, belongs to another
        board id, or holds another key than ``key`` (when ``key`` is given).
        """
        path = Path(path)
        if not path.exists():
            storage = FileStorage(path, create_size=file_size(slot_size))
            if factory_config is None:
                factory_config = default_factory_config(board_id)
            return cls.format(storage, board_id, key=key, slot_size=slot_size,
                              max_block=max_block, factory_config=factory_config)
        flash = cls(FileStorage(path))
        if flash.board_id != board_id:
            flash.close()
            raise FlashFileError(f"{path}: flash of board {flash.board_id!r}, not {board_id!r}")
        if key is not None and key != flash._key:
            flash.close()
            raise FlashFileError(f"{path}: the board holds {'another' if flash._key else 'no'} "
                                 "HMAC key; make a new flash file to provision one")
        return flash

    def close(self) -> None:
        self._storage.close()

    # -- boot -----------------------------------------------------------------------------------

    def _header_at(self, slot: int) -> int:
        return SLOT_HEADERS_AT + slot * HEADER_AREA

    def _data_at(self, slot: int) -> int:
        return DATA_AT + slot * self.slot_size

    def _inspect(self, slot: int) -> SlotState:
        raw = self._storage.read(self._header_at(slot), SLOT_HEADER_SIZE)
        if raw == bytes([ERASED]) * SLOT_HEADER_SIZE:
            return SlotState(slot, False, 0, 0, 0, "erased")
        try:
            h = SLOT_HEADER.parse(raw)
        except cs.ConstructError:
            return SlotState(slot, False, 0, 0, 0, "no slot header (bad magic)")
        if zlib.crc32(raw[:16]) != h.header_crc:
            return SlotState(slot, False, 0, 0, 0, "slot header CRC mismatch (commit incomplete)")
        if not 0 < h.length <= self.slot_size:
            return SlotState(slot, False, h.generation, h.length, h.image_crc,
                             f"length {h.length} does not fit the {self.slot_size}-byte slot")
        data = self._storage.read(self._data_at(slot), h.length)
        if not _crc_matches(data, h.image_crc):
            return SlotState(slot, False, h.generation, h.length, h.image_crc,
                             "image CRC-32 does not match the slot header")
        try:
            decoded = decode_image(data, self._key, require_tag=self._key is not None)
        except ConfigImageError as exc:
            return SlotState(slot, False, h.generation, h.length, h.image_crc, str(exc))
        if decoded.config.generation != h.generation:
            return SlotState(slot, False, h.generation, h.length, h.image_crc,
                             f"image generation {decoded.config.generation} differs from the "
                             f"slot header's {h.generation}")
        return SlotState(slot, True, h.generation, h.length, h.image_crc, None, decoded.config)

    def _select(self) -> SlotState | None:
        valid = [s for s in self.slots if s.valid]
        # Highest generation wins; commit never lets two valid slots share one.
        return max(valid, key=lambda s: (s.generation, -s.slot)) if valid else None

    # -- what the board runs --------------------------------------------------------------------

    @property
    def config(self) -> BoardConfig | None:
        """The active image's configuration; None when the board is unconfigured."""
        return self.active.config if self.active else None

    @property
    def key_held(self) -> bool:
        return self._key is not None

    def info(self) -> FlashInfo:
        a, s = self.active, self._session
        return FlashInfo(
            board_id=self.board_id,
            active_slot=a.slot if a else None,
            generation=a.generation if a else 0,
            length=a.length if a else 0,
            crc32=a.crc32 if a else 0,
            slot_size=self.slot_size,
            max_block=self.max_block,
            key_held=self.key_held,
            session_slot=s.slot if s else None,
            session_written=s.written if s else 0,
        )

    # -- the flash requests ---------------------------------------------------------------------

    def begin(self, length: int, crc32: int) -> int:
        """FLASH_BEGIN: start writing an image of ``length`` bytes whose CRC-32 is ``crc32`` to
        the inactive slot; erase that slot's header. Returns the slot (0 = A, 1 = B). A begin
        during a session replaces it (a host re-running an interrupted flash)."""
        self._session = None
        if not 0 < length <= self.slot_size:
            raise FlashRefused(FlashRefusal.BAD_LENGTH,
                               f"image of {length} bytes does not fit the {self.slot_size}-byte "
                               "slot" if length else "image of 0 bytes")
        slot = 0 if self.active is None else 1 - self.active.slot
        self._storage.write(self._header_at(slot), bytes([ERASED]) * SLOT_HEADER_SIZE)
        self.slots = tuple(self._inspect(i) if i == slot else st  # type: ignore[assignment]
                           for i, st in enumerate(self.slots))
        self._session = _Session(slot, length, crc32 & 0xFFFFFFFF)
        return slot

    def write(self, offset: int, data: bytes) -> int:
        """FLASH_WRITE: store ``data`` at ``offset`` of the image being flashed. Blocks go in
        order; rewriting already written bytes is allowed (a retried block), a gap is not.
        Returns the CRC-32 of the bytes as read back from flash."""
        s = self._require_session()
        if not 0 < len(data) <= self.max_block:
            raise FlashRefused(FlashRefusal.BAD_LENGTH,
                               f"block of {len(data)} bytes; expected 1..{self.max_block}")
        if offset > s.written:
            raise FlashRefused(FlashRefusal.OUT_OF_ORDER,
                               f"block at offset {offset} out of order; expected offset "
                               f"{s.written} (or a rewrite below it)")
        if offset + len(data) > s.length:
            raise FlashRefused(FlashRefusal.OUT_OF_RANGE,
                               f"block {offset}..{offset + len(data) - 1} runs past the image "
                               f"length {s.length} declared at begin")
        at = self._data_at(s.slot) + offset
        self._storage.write(at, bytes(data))
        s.written = max(s.written, offset + len(data))
        return crc32(self._storage.read(at, len(data)))

    def read(self, slot: int, offset: int, length: int) -> bytes:
        """FLASH_READ: ``length`` bytes (1..max_block) of slot ``slot``'s data at ``offset``."""
        self._check_range(slot, offset, length, self.max_block)
        return self._storage.read(self._data_at(slot) + offset, length)

    def check(self, slot: int, offset: int, length: int) -> int:
        """FLASH_READ in CRC mode: the CRC-32 of ``length`` bytes of slot ``slot`` at ``offset``."""
        self._check_range(slot, offset, length, self.slot_size)
        return crc32(self._storage.read(self._data_at(slot) + offset, length))

    def commit(self) -> FlashInfo:
        """FLASH_COMMIT: verify the written image and make it active (the commit rule above).
        Ends the session, refused or not. Returns the new FLASH_INFO."""
        s = self._require_session()
        self._session = None
        if s.written < s.length:
            raise FlashRefused(FlashRefusal.INCOMPLETE,
                               f"only {s.written} of {s.length} bytes written")
        data = self._storage.read(self._data_at(s.slot), s.length)
        if not _crc_matches(data, s.crc32):
            raise FlashRefused(FlashRefusal.CRC_MISMATCH,
                               f"stored image CRC-32 is {image_crc(data):#010x} (CRC field "
                               f"{int.from_bytes(data[-4:], 'little'):#010x}), FLASH_BEGIN "
                               f"declared {s.crc32:#010x}")
        crc = s.crc32
        try:
            decoded = decode_image(data, self._key, require_tag=self._key is not None)
        except ImageTagError as exc:
            code = FlashRefusal.TAG_MISSING if exc.missing else FlashRefusal.TAG_MISMATCH
            raise FlashRefused(code, str(exc)) from exc
        except ConfigImageError as exc:
            raise FlashRefused(FlashRefusal.INVALID_IMAGE, f"image invalid: {exc}") from exc
        generation = decoded.config.generation
        floor = self.active.generation if self.active else 0
        if generation <= floor:
            raise FlashRefused(FlashRefusal.STALE_GENERATION,
                               f"image generation {generation} is not above the active "
                               f"generation {floor}")
        header = SLOT_HEADER.build(dict(length=s.length, image_crc=crc, generation=generation,
                                        header_crc=0))
        header = header[:16] + zlib.crc32(header[:16]).to_bytes(4, "little")
        at = self._header_at(s.slot)
        self._storage.write(at, header[:_COMMIT_FIELDS_AT])
        # The single final write: generation and the header CRC that covers it.
        self._storage.write(at + _COMMIT_FIELDS_AT, header[_COMMIT_FIELDS_AT:])
        self.slots = (self._inspect(0), self._inspect(1))
        self.active = self._select()
        return self.info()

    def abort(self) -> None:
        """FLASH_ABORT: drop the session. The inactive slot stays erased; the active one runs."""
        self._session = None

    def flash_image(self, image: bytes) -> FlashInfo:
        """The whole sequence in-process (factory programming, tests): begin, blocks, commit."""
        self.begin(len(image), image_crc(image))
        for offset in range(0, len(image), self.max_block):
            self.write(offset, image[offset:offset + self.max_block])
        return self.commit()

    def _require_session(self) -> _Session:
        if self._session is None:
            raise FlashRefused(FlashRefusal.NO_SESSION, "no flash session; send FLASH_BEGIN first")
        return self._session

    def _check_range(self, slot: int, offset: int, length: int, limit: int) -> None:
        if slot not in (0, 1):
            raise FlashRefused(FlashRefusal.BAD_SLOT, f"slot {slot}; expected 0 (A) or 1 (B)")
        if not 0 < length <= limit:
            raise FlashRefused(FlashRefusal.BAD_LENGTH, f"read of {length} bytes; expected 1..{limit}")
        if offset < 0 or offset + length > self.slot_size:
            raise FlashRefused(FlashRefusal.OUT_OF_RANGE,
                               f"bytes {offset}..{offset + length - 1} run past the "
                               f"{self.slot_size}-byte slot")


def _crc_matches(data: bytes, expected: int) -> bool:
    """True when the image bytes' CRC-32 and their stored CRC field both equal ``expected``,
    so every byte, the last four included, is checked."""
    return (len(data) > 4 and image_crc(data) == expected
            and int.from_bytes(data[-4:], "little") == expected)


def file_size(slot_size: int = DEFAULT_SLOT_SIZE) -> int:
    """Size in bytes of a flash file with two slots of ``slot_size``."""
    return DATA_AT + 2 * slot_size


# --------------------------------------------------------------------------------------------
# Factory configuration from a scenario

PRESSURE_CAL = dict(offset=0.0, gain=0.01, temp_coeff=0.0, valid_min=1_000.0, valid_max=120_000.0)
TEMPERATURE_CAL = dict(offset=200.0, gain=1e-5, temp_coeff=0.0, valid_min=233.15, valid_max=358.15)
FLOW_CAL = dict(offset=0.0, gain=1e-7, temp_coeff=0.0, valid_min=0.0, valid_max=1.0)
REPRESS_TIMEOUT_S = 1.0


def config_for_scenario(scenario: Mapping[str, Any], board_id: str = DEFAULT_BOARD_ID,
                        *, sample_rate_hz: int = 10, oversampling: int = 16,
                        hil_allowed: bool = True) -> BoardConfig:
    """A board configuration that wires a board to a scenario's station (scenario dict keys as in
    docs/architecture.md): three pressure and two temperature channels per module, a flow
    channel per repress line, every connection and repress line as a valve, nominal calibration
    (pressure 0.01 Pa/count, temperature 200 K + 1e-5 K/count, flow 1e-7 kg/s per count).
    The actuation timeout is twice the connection's actuation time (at least 0.5 s).

    Raises ConfigSourceError when the result does not validate (e.g. a repress into an unknown
    module).
    """
    modules = tuple(ModuleConfig(str(m["name"]), float(m["volume_m3"]))
                    for m in scenario.get("modules", []))
    channels: list[ChannelConfig] = []
    for m in modules:
        channels += [ChannelConfig(f"{m.name}.p{i}", ChannelKind.PRESSURE, m.name, **PRESSURE_CAL)
                     for i in (1, 2, 3)]
    for m in modules:
        channels += [ChannelConfig(f"{m.name}.t{i}", ChannelKind.TEMPERATURE, m.name,
                                   **TEMPERATURE_CAL) for i in (1, 2)]
    valves: list[ValveConfig] = []
    for c in scenario.get("connections", []):
        kind = ValveKind.HATCH if c.get("kind", "hatch") == "hatch" else ValveKind.VALVE
        a, b = c["modules"]
        valves.append(ValveConfig(str(c["id"]), kind, str(a), str(b),
                                  max(0.5, 2.0 * float(c.get("actuation_s", 0.25)))))
    for r in scenario.get("repress", []):
        valves.append(ValveConfig(str(r["id"]), ValveKind.REPRESS, str(r["module"]), None,
                                  REPRESS_TIMEOUT_S))
        channels.append(ChannelConfig(f"{r['id']}.flow", ChannelKind.FLOW, str(r["module"]),
                                      **FLOW_CAL))
    config = BoardConfig(board_id=board_id, generation=0, sample_rate_hz=sample_rate_hz,
                         oversampling=oversampling, hil_allowed=hil_allowed, modules=modules,
                         channels=tuple(channels), valves=tuple(valves))
    validate_config(config, source=f"scenario {scenario.get('name', '?')}")
    return config


def default_factory_config(board_id: str = DEFAULT_BOARD_ID) -> BoardConfig:
    """The configuration a new emulated board ships with: :func:`config_for_scenario` of the
    soyuz-ms09 preset (examples/board.toml is the same configuration as a TOML source)."""
    from .scenario import preset_dict

    return config_for_scenario(preset_dict("soyuz-ms09"), board_id)
