"""The board's configuration flash: two image slots (A/B) in a file, boot selection, the commit rule.

The board emulator keeps its configuration here so it survives restarts, and delegates every
config-flash request to :class:`BoardFlash` (begin, write, read, check, commit, abort, info). A
request the board refuses raises :class:`FlashRefused` with a :class:`FlashRefusal` code and a
reason text, which the emulator sends back as a NAK. docs/config-image.md is the reference.

File layout (little-endian)::

    0x000  superblock (128 bytes): magic "HWFL", layout version, block size, slot size, board id,
           HMAC key (length + 64 bytes), CRC-32. Written once, when the board is made.
    0x080  slot A header (32 bytes, 20 used)
    0x0A0  slot B header
    0x0C0  slot A data (slot_size bytes)
    ...    slot B data (slot_size bytes)

Slot header (20 bytes)::

    0 magic "HWSL" | 4 length u32 | 8 image_crc u32 | 12 generation u32 | 16 header_crc u32
    header_crc = CRC-32 of bytes 0..15; an erased header is all 0xFF.

The commit rule (why a power cut at any byte is safe):

1. FLASH_BEGIN declares the image's size and CRC; the board picks the inactive slot (the one
   not running; A when none is) and erases it: its header first, then its data. The active slot
   is never written during a flash.
2. FLASH_WRITE blocks go, in order, to that slot's data area only.
3. FLASH_COMMIT checks the stored bytes (the image CRC declared at begin, the image's own CRC
   field, structure and validation, the HMAC tag when the board holds a key, a generation above
   the active one), writes header bytes 0..11 (magic, length, image CRC), then, as the single final
   write, bytes 12..19 (generation and the header CRC that covers it).
4. Boot: a slot is bootable when its magic and header CRC match, its length fits the slot, its
   data's image CRC equals the header's, and the image decodes and validates (tag checked when
   the board holds a key) with the header's generation. The board runs the bootable slot with
   the highest generation; with none it runs unconfigured.

Until the last byte of step 3's final write lands, the header CRC cannot match (it covers the
generation), so the new slot is not bootable and boot keeps the old one; once it lands, the new
slot is bootable with a higher generation and wins. The old slot is untouched either way.

Power cuts are modelled at the storage level: :class:`PowerCutStorage` lets a set number of
bytes through and then "cuts the power" (raises :class:`PowerCut`, a BaseException so no
handler in the emulator swallows it); a fresh BoardFlash on the same file is the reboot.

The storages live in :mod:`hullwatch.sim.board_storage` and the factory configuration in
:mod:`hullwatch.sim.board_factory`; both are re-exported here.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from pathlib import Path

import construct as cs

from ..hal.config_image import (
    check_key,
    crc32,
    decode_image,
    encode_image,
    generation_after,
    generation_newer,
    image_crc,
)
from ..hal.config_model import MAX_KEY_SIZE as _IMAGE_MAX_KEY_SIZE
from ..hal.config_model import MIN_KEY_SIZE, BoardConfig, ImageTagError
from ..hal.errors import ConfigImageError
from ..hal.wire import MAX_BLOCK, FlashRefusal, NakCode, SlotState, nak_code_of  # FlashRefusal: re-exported, defined with the NAK codes
# The factory configuration and the storages live in their own modules; re-exported here.
from .board_factory import (  # noqa: F401 - re-exported
    DEFAULT_BOARD_ID, FLOW_CAL, PRESSURE_CAL, TEMPERATURE_CAL, config_for_scenario,
    default_factory_config,
)
from .board_storage import (  # noqa: F401 - re-exported
    ERASED, FileStorage, FlashFileError, FlashStorage, MemoryStorage, PowerCut, PowerCutStorage,
)
from .errors import SimError

DEFAULT_SLOT_SIZE = 16 * 1024  #: bytes per slot
DEFAULT_BLOCK_SIZE = 1024  #: largest FLASH_WRITE / FLASH_READ block, bytes (hal.wire.MAX_BLOCK)
MAX_KEY_SIZE = _IMAGE_MAX_KEY_SIZE  # bytes of key the superblock holds
MAX_SLOT_SIZE = 1 << 20  #: largest slot a flash file may declare, bytes (images are far smaller)

SUPERBLOCK_SIZE = 128
HEADER_AREA = 32  #: bytes reserved per slot header
SLOT_HEADER_SIZE = 20
SLOT_HEADERS_AT = SUPERBLOCK_SIZE
DATA_AT = SUPERBLOCK_SIZE + 2 * HEADER_AREA
SLOT_NAMES = ("A", "B")

_SUPERBLOCK = cs.Struct(
    "body" / cs.RawCopy(cs.Struct(
        "magic" / cs.Const(b"HWFL"),
        "layout_version" / cs.Const(1, cs.Int16ul),
        "block_size" / cs.Int16ul,
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


class FlashRefused(SimError):
    """The board refuses a flash request; the emulator answers with a NAK (:attr:`nak_code`,
    ``reason``). A refused request never changes the active image."""

    def __init__(self, code: FlashRefusal, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason

    @property
    def nak_code(self) -> NakCode:
        return nak_code_of(self.code)


# --------------------------------------------------------------------------------------------
# The board's view


@dataclass(frozen=True, slots=True)
class SlotStatus:
    """What the board knows of one slot. ``state`` is the wire's SlotState; ``problem`` says why a
    slot is not bootable (None when it is); ``config`` is set for a bootable slot."""

    slot: int
    state: SlotState
    generation: int
    length: int
    crc32: int
    problem: str | None = None
    config: BoardConfig | None = None

    @property
    def name(self) -> str:
        return SLOT_NAMES[self.slot]

    @property
    def valid(self) -> bool:
        """True when the slot is bootable (state VALID or ACTIVE)."""
        return self.config is not None


@dataclass(frozen=True, slots=True)
class FlashInfo:
    """The board's flash state (FLASH_INFO_REPLY, and IDENTIFY_REPLY's active slot, generation,
    CRC). ``active_slot`` None: no valid image (generation, length and crc32 are then 0).
    ``crc32`` is the active image's CRC (:func:`~hullwatch.hal.config_image.image_crc`)."""

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
    slots: tuple[SlotStatus, SlotStatus]


@dataclass(slots=True)
class _Session:
    slot: int
    size: int
    crc32: int
    written: int = 0


class BoardFlash:
    """The configuration flash of one board, on a :class:`FlashStorage`.

    Constructing one is a boot: it reads the superblock and picks the active slot. The request
    methods mirror the wire's FLASH_* messages (docs/protocol.md) and raise
    :class:`FlashRefused` (with the NAK code) when the board says no, :class:`PowerCut` when the
    modelled power fails. Sizes and offsets are in bytes; slots are 0 (A) and 1 (B).
    """

    def __init__(self, storage: FlashStorage) -> None:
        self._storage = storage
        raw = storage.read(0, SUPERBLOCK_SIZE)
        try:
            sb = _SUPERBLOCK.parse(raw)
        except cs.ConstructError as exc:
            raise FlashFileError(f"not a hullwatch board flash (superblock: {exc})") from exc
        v = sb.body.value
        # A superblock whose fields break the protocol's limits would have the board advertise
        # them (IDENTIFY_REPLY, FLASH_INFO): refused like a bad magic or CRC.
        problem = _geometry_problem(v.block_size, v.slot_size)
        if problem:
            raise FlashFileError(f"superblock {problem}")
        if v.key and not MIN_KEY_SIZE <= len(v.key) <= MAX_KEY_SIZE:
            raise FlashFileError(f"superblock key_length {len(v.key)}; expected 0 (no key) or "
                                 f"{MIN_KEY_SIZE} .. {MAX_KEY_SIZE}")
        if len(storage.read(file_size(v.slot_size) - 1, 1)) != 1:
            raise FlashFileError(f"truncated: the superblock's two slots of {v.slot_size} bytes "
                                 f"need {file_size(v.slot_size)} bytes")
        self.board_id: str = v.board_id
        self.slot_size: int = v.slot_size
        self.max_block: int = v.block_size  #: largest write/read block, bytes
        self._key: bytes | None = bytes(v.key) or None
        self._session: _Session | None = None
        self._status: list[SlotStatus] = [self._inspect(0), self._inspect(1)]
        self._active: int | None = self._select()

    # -- making and opening -------------------------------------------------------------------

    @classmethod
    def format(cls, storage: FlashStorage, board_id: str = DEFAULT_BOARD_ID, *,
               key: bytes | None = None, slot_size: int = DEFAULT_SLOT_SIZE,
               block_size: int = DEFAULT_BLOCK_SIZE,
               factory_config: BoardConfig | None = None) -> "BoardFlash":
        """Write a fresh superblock and erased slots (what the factory does), then, if given,
        flash ``factory_config`` as generation 1 (tagged with ``key``). Not power-fail safe."""
        if key is not None:
            check_key(key)
            if len(key) > MAX_KEY_SIZE:
                raise ConfigImageError(f"HMAC key is {len(key)} bytes; at most {MAX_KEY_SIZE}")
        problem = _geometry_problem(block_size, slot_size)
        if problem:  # (before anything is written)
            raise ValueError(f"bad geometry: {problem}")
        storage.write(0, _SUPERBLOCK.build(dict(body=dict(value=dict(
            block_size=block_size, slot_size=slot_size, board_id=board_id, key=key or b"")))))
        storage.write(SLOT_HEADERS_AT, bytes([ERASED]) * (2 * HEADER_AREA))
        flash = cls(storage)
        if factory_config is not None:
            flash.flash_image(encode_image(factory_config.with_generation(1), key=key))
        return flash

    @classmethod
    def open(cls, path: str | Path, *, board_id: str = DEFAULT_BOARD_ID,
             key: bytes | None = None, factory_config: BoardConfig | None = None,
             slot_size: int = DEFAULT_SLOT_SIZE, block_size: int = DEFAULT_BLOCK_SIZE) -> "BoardFlash":
        """Boot from the flash file at ``path``, making it first if it does not exist (with
        ``board_id``, ``key``, and ``factory_config`` as generation 1: by default
        :func:`default_factory_config`, the soyuz-ms09 station).

        Raises FlashFileError if an existing file is not a flash file, belongs to another
        board id, or holds another key than ``key`` (when ``key`` is given).
        """
        path = Path(path)
        if not path.exists():
            if factory_config is None:
                factory_config = default_factory_config(board_id)
            storage = FileStorage(path, create_size=file_size(slot_size))
            return cls.format(storage, board_id, key=key, slot_size=slot_size,
                              block_size=block_size, factory_config=factory_config)
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

    def _inspect(self, slot: int) -> SlotStatus:
        """Apply the boot rule to one slot (state ACTIVE is assigned by :meth:`_select`)."""
        raw = self._storage.read(self._header_at(slot), SLOT_HEADER_SIZE)
        if raw == bytes([ERASED]) * SLOT_HEADER_SIZE:
            return SlotStatus(slot, SlotState.EMPTY, 0, 0, 0, "erased")
        bad = SlotState.INVALID
        try:
            h = SLOT_HEADER.parse(raw)
        except cs.ConstructError:
            return SlotStatus(slot, bad, 0, 0, 0, "no slot header (bad magic)")
        if zlib.crc32(raw[:_COMMIT_FIELDS_AT + 4]) != h.header_crc:
            return SlotStatus(slot, bad, 0, 0, 0, "slot header CRC mismatch (commit incomplete)")
        found = (h.generation, h.length, h.image_crc)
        if not 4 < h.length <= self.slot_size:
            return SlotStatus(slot, bad, *found,
                              f"length {h.length} does not fit the {self.slot_size}-byte slot")
        data = self._storage.read(self._data_at(slot), h.length)
        if not _crc_matches(data, h.image_crc):
            return SlotStatus(slot, bad, *found, "image CRC-32 does not match the slot header")
        try:
            decoded = decode_image(data, self._key, require_tag=self._key is not None)
        except ConfigImageError as exc:
            return SlotStatus(slot, bad, *found, str(exc))
        if decoded.config.generation != h.generation:
            return SlotStatus(slot, bad, *found, f"image generation {decoded.config.generation} "
                              f"differs from the slot header's {h.generation}")
        return SlotStatus(slot, SlotState.VALID, *found, None, decoded.config)

    def _select(self) -> int | None:
        """The boot selection: the bootable slot with the highest generation (commit never lets
        two bootable slots share one; a tie would go to A). Marks it ACTIVE."""
        bootable = [st for st in self._status if st.valid]
        if not bootable:
            return None
        best = bootable[0]
        for st in bootable[1:]:
            # Serial-number order: generations wrap from 2^32-1 to 1 (config_image.generation_newer).
            if generation_newer(st.generation, best.generation):
                best = st
        self._status[best.slot] = dataclasses.replace(best, state=SlotState.ACTIVE)
        return best.slot

    def _reinspect(self, slot: int, state: SlotState | None = None) -> None:
        st = self._inspect(slot)
        self._status[slot] = st if state is None else dataclasses.replace(st, state=state)

    # -- what the board runs --------------------------------------------------------------------

    @property
    def slots(self) -> tuple[SlotStatus, SlotStatus]:
        """Both slots as boot (and any flash since) left them."""
        return (self._status[0], self._status[1])

    @property
    def active(self) -> SlotStatus | None:
        return None if self._active is None else self._status[self._active]

    @property
    def config(self) -> BoardConfig | None:
        """The active image's configuration; None when the board is unconfigured."""
        a = self.active
        return a.config if a else None

    @property
    def key_held(self) -> bool:
        return self._key is not None

    @property
    def writing(self) -> bool:
        return self._session is not None

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
            slots=(self._status[0], self._status[1]),
        )

    # -- the flash requests ---------------------------------------------------------------------

    def begin(self, size: int, image_crc32: int) -> int:
        """FLASH_BEGIN: start writing an image of ``size`` bytes whose image CRC is
        ``image_crc32`` (:func:`~hullwatch.hal.config_image.image_crc`) to the inactive slot;
        erase that slot, header first (so it is unbootable before its data is touched). A begin
        during a session replaces it (a host re-running an interrupted flash). Returns the slot.

        Refused: BAD_LENGTH (size 0 or more than a slot).
        """
        self.abort()
        if not 0 < size <= self.slot_size:
            raise FlashRefused(FlashRefusal.BAD_LENGTH,
                               f"image of {size} bytes does not fit the {self.slot_size}-byte slot"
                               if size else "image of 0 bytes")
        slot = self._inactive()
        self._storage.write(self._header_at(slot), bytes([ERASED]) * SLOT_HEADER_SIZE)
        self._storage.write(self._data_at(slot), bytes([ERASED]) * self.slot_size)
        self._session = _Session(slot, size, image_crc32 & 0xFFFFFFFF)
        self._reinspect(slot, SlotState.WRITING)
        return slot

    def write(self, offset: int, data: bytes) -> int:
        """FLASH_WRITE: store ``data`` at ``offset`` of the image. ``offset`` may be at most the
        bytes written so far: rewriting is allowed (a retried block whose reply was lost), a gap
        is not. Returns ``written``, the bytes stored so far (the next offset).

        Refused: NO_SESSION, BAD_LENGTH (empty or more than block_size), OUT_OF_ORDER (the
        reason names the expected offset), OUT_OF_RANGE (past the size declared at begin).
        """
        s = self._require_session()
        if not 0 < len(data) <= self.max_block:
            raise FlashRefused(FlashRefusal.BAD_LENGTH,
                               f"block of {len(data)} bytes; expected 1..{self.max_block}")
        if not 0 <= offset <= s.written:
            raise FlashRefused(FlashRefusal.OUT_OF_ORDER,
                               f"block at offset {offset} out of order; expected offset "
                               f"{s.written} (or a rewrite below it)")
        if offset + len(data) > s.size:
            raise FlashRefused(FlashRefusal.OUT_OF_RANGE,
                               f"block {offset}..{offset + len(data) - 1} runs past the "
                               f"{s.size}-byte image declared at FLASH_BEGIN")
        self._storage.write(self._data_at(s.slot) + offset, bytes(data))
        s.written = max(s.written, offset + len(data))
        return s.written

    def read(self, slot: int, offset: int, length: int) -> bytes:
        """FLASH_READ: ``length`` (1..block_size) bytes of ``slot``'s data area at ``offset``.
        Refused: BAD_SLOT, BAD_LENGTH, OUT_OF_RANGE (runs past the slot)."""
        self._check_range(slot, offset, length, self.max_block)
        return self._storage.read(self._data_at(slot) + offset, length)

    def check(self, slot: int, offset: int, length: int) -> int:
        """FLASH_CRC: CRC-32 (zlib) of ``length`` (1..slot_size) bytes of ``slot`` at ``offset``.
        Refused: BAD_SLOT, BAD_LENGTH, OUT_OF_RANGE."""
        self._check_range(slot, offset, length, self.slot_size)
        return crc32(self._storage.read(self._data_at(slot) + offset, length))

    def commit(self) -> FlashInfo:
        """FLASH_COMMIT: check the written image and make it active (the commit rule above). The
        session ends, refused or not. Returns the new flash state.

        Refused, checked in this order: NO_SESSION, INCOMPLETE, CRC_MISMATCH (the stored image's
        CRC and its CRC field against begin's), INVALID_IMAGE (names the field), TAG_MISSING /
        TAG_MISMATCH (board holds a key), STALE_GENERATION. The board does not check the image's
        board id: the host refuses an image built for another board unless forced.
        """
        s = self._require_session()
        self.abort()
        generation = self._check_commit(s)
        header = SLOT_HEADER.build(dict(length=s.size, image_crc=s.crc32, generation=generation,
                                        header_crc=0))
        head = header[:_COMMIT_FIELDS_AT + 4]
        header = head + zlib.crc32(head).to_bytes(4, "little")
        at = self._header_at(s.slot)
        self._storage.write(at, header[:_COMMIT_FIELDS_AT])
        # The single final write: the generation and the header CRC that covers it.
        self._storage.write(at + _COMMIT_FIELDS_AT, header[_COMMIT_FIELDS_AT:])
        self._status = [self._inspect(0), self._inspect(1)]
        self._active = self._select()
        if self._active != s.slot:  # only if the storage does not keep what was written
            raise FlashFileError(f"slot {SLOT_NAMES[s.slot]} does not boot after its commit: "
                                 f"{self._status[s.slot].problem}")
        return self.info()

    def _check_commit(self, s: _Session) -> int:
        """The commit checks; returns the image's generation or raises FlashRefused."""
        if s.written < s.size:
            raise FlashRefused(FlashRefusal.INCOMPLETE, f"only {s.written} of {s.size} bytes written")
        data = self._storage.read(self._data_at(s.slot), s.size)
        if not _crc_matches(data, s.crc32):
            raise FlashRefused(FlashRefusal.CRC_MISMATCH,
                               f"stored image CRC-32 is {image_crc(data):#010x} (its CRC field "
                               f"{int.from_bytes(data[-4:], 'little'):#010x}), FLASH_BEGIN "
                               f"declared {s.crc32:#010x}")
        try:
            decoded = decode_image(data, self._key, require_tag=self._key is not None)
        except ImageTagError as exc:
            code = FlashRefusal.TAG_MISSING if exc.missing else FlashRefusal.TAG_MISMATCH
            raise FlashRefused(code, str(exc)) from exc
        except ConfigImageError as exc:
            raise FlashRefused(FlashRefusal.INVALID_IMAGE, f"image invalid: {exc}") from exc
        generation = decoded.config.generation
        if generation == 0:  # 0 only in a source not yet flashed (docs/config-image.md)
            raise FlashRefused(FlashRefusal.INVALID_IMAGE,
                               "image invalid: generation: expected 1 .. 4294967295, got 0")
        floor = self.active.generation if self.active else 0
        if not generation_newer(generation, floor):
            raise FlashRefused(FlashRefusal.STALE_GENERATION,
                               f"image generation {generation} is not newer than the active "
                               f"generation {floor} (serial order; the next is "
                               f"{generation_after(floor)})")
        return generation

    def abort(self) -> None:
        """FLASH_ABORT: end a flash session; its slot stays erased, the active image runs."""
        if self._session is not None:
            slot, self._session = self._session.slot, None
            self._reinspect(slot)

    def flash_image(self, image: bytes) -> FlashInfo:
        """The whole sequence in-process (factory programming, tests): begin, blocks, commit."""
        self.begin(len(image), image_crc(image))
        for offset in range(0, len(image), self.max_block):
            self.write(offset, image[offset:offset + self.max_block])
        return self.commit()

    def _require_session(self) -> _Session:
        if self._session is None:
            raise FlashRefused(FlashRefusal.NO_SESSION, "no flash in progress; send FLASH_BEGIN first")
        return self._session

    def _inactive(self) -> int:
        return 0 if self._active is None else 1 - self._active

    def _check_range(self, slot: int, offset: int, length: int, limit: int) -> None:
        if slot not in (0, 1):
            raise FlashRefused(FlashRefusal.BAD_SLOT, f"slot {slot}; expected 0 (A) or 1 (B)")
        if not 0 < length <= limit:
            raise FlashRefused(FlashRefusal.BAD_LENGTH, f"length {length}; expected 1..{limit}")
        if offset < 0 or offset + length > self.slot_size:
            raise FlashRefused(FlashRefusal.OUT_OF_RANGE,
                               f"bytes {offset}..{offset + length - 1} run past the "
                               f"{self.slot_size}-byte slot")


def _crc_matches(data: bytes, expected: int) -> bool:
    """True when the image bytes' CRC-32 and their stored CRC field both equal ``expected``,
    so every byte, the last four included, is checked."""
    return (len(data) > 4 and image_crc(data) == expected
            and int.from_bytes(data[-4:], "little") == expected)


def _geometry_problem(block_size: int, slot_size: int) -> str | None:
    """What is wrong with a flash's block and slot sizes (bytes), or None: the one rule a
    superblock made here and one read from a file are held to."""
    if not 1 <= block_size <= MAX_BLOCK:
        return f"block_size {block_size}; expected 1 .. {MAX_BLOCK}"
    if not block_size <= slot_size <= MAX_SLOT_SIZE:
        return f"slot_size {slot_size}; expected {block_size} (block_size) .. {MAX_SLOT_SIZE}"
    return None


def file_size(slot_size: int = DEFAULT_SLOT_SIZE) -> int:
    """Size in bytes of a flash file with two slots of ``slot_size``."""
    return DATA_AT + 2 * slot_size
