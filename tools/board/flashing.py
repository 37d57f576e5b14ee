"""Flashing a configuration image to the USB sensor board: the host side of a flash.

Library first (esptool's ``cmds.py`` is the model): every operation takes a connected
:class:`~hullwatch.hal.board_link.BoardLink`, reports progress through a callback and never
prints; ``hullwatch flash`` and ``hullwatch board-info`` are thin shells over it. The sequence,
the retry bounds and the verify modes are documented in docs/config-image.md ("What
``hullwatch flash`` does")::

    link = BoardLink.open("/dev/ttyACM0")
    result = flash_config(link, load_config("board.toml"), key=None,
                          progress=lambda phase, done, total: ...)
    print(result.generation, hex(result.crc32))

Raises (all :class:`~hullwatch.tools.errors.ToolError`, so the CLI maps them to exit statuses):
    WrongBoardError: the image is for another board id and ``force`` is not set (exit 2).
    ImageTooLargeError: the image does not fit the board's slot (exit 2).
    FlashError: the board refused (NAK, with its reason), stopped answering, the link died, or
        the verify or the confirmation failed (exit 4). Its message says which image the board
        runs now; ``board_switched`` is False when the board certainly stays on its previous one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ...hal import wire
from ...hal.board_check import check_flash_info
from ...hal.board_link import BoardDescription, BoardLink
from ...hal.config_image import crc32, decode_image, encode_image, generation_after, generation_newer, image_crc
from ...hal.config_model import BoardConfig, ChannelConfig, ModuleConfig, ValveConfig
from ...hal.interfaces import ChannelKind, ValveKind
from ...hal.keyfile import read_key_file
from ...hal.errors import ConfigImageError, LinkError, LinkTimeout, NakError, ProtocolError
from ..errors import DeviceProblem, InputError

#: Attempts per FLASH_WRITE / FLASH_READ / FLASH_CRC block (first try included). A timeout or a
#: damaged response is retried; a NAK is not (the board answered, and said no).
BLOCK_ATTEMPTS = 4
#: Wait for a block's response beyond the block's own wire time at the link's baud rate, s.
BLOCK_TIMEOUT_S = 0.1
#: Attempts for the control requests (IDENTIFY, FLASH_INFO, FLASH_BEGIN, FLASH_ABORT).
CONTROL_ATTEMPTS = 3
#: FLASH_COMMIT is sent once (a lost reply is resolved by asking the board what it runs) and may
#: take the board up to 500 ms (docs/protocol.md); wait this long, s.
COMMIT_TIMEOUT_S = 1.5
#: Whole write-and-verify passes before giving up when the verify finds a bad block.
WRITE_PASSES = 2

VERIFY_MODES = ("crc", "read")

#: progress(phase, done_bytes, total_bytes); phase is "write" or "verify".
Progress = Callable[[str, int, int], None]


class FlashError(DeviceProblem):
    """A flash failed on the board's side or on the link. ``board_switched`` is False when the
    board certainly still runs its previous image, None when that is unknown."""

    def __init__(self, message: str, board_switched: bool | None = False) -> None:
        super().__init__(message)
        self.board_switched = board_switched


class WrongBoardError(InputError):
    """The image is built for another board id (use ``force`` to flash it anyway)."""


class ImageTooLargeError(InputError):
    """The image is larger than the board's slot."""


@dataclass(slots=True)
class FlashResult:
    """What a flash did. Times in seconds, sizes in bytes."""

    board_id: str
    slot: int
    generation: int
    crc32: int
    size: int
    block_size: int
    verify: str
    previous_generation: int
    retries: int = 0
    passes: int = 1
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def slot_name(self) -> str:
        return "AB"[self.slot]


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What ``board-info`` shows: identity, flash state, and (when configured) the tables."""

    identity: wire.IdentifyReply
    flash: wire.FlashInfoReply
    description: BoardDescription | None


def _slot_name(slot: int) -> str:
    return "none" if slot == wire.NO_SLOT else "AB"[slot] if slot < 2 else str(slot)


def _runs(identity: wire.IdentifyReply) -> str:
    if identity.active_slot == wire.NO_SLOT:
        return "no valid configuration"
    return (f"generation {identity.generation} (slot {_slot_name(identity.active_slot)}, image CRC "
            f"{identity.config_crc32:#010x})")


def read_board_info(link: BoardLink) -> BoardInfo:
    """IDENTIFY, FLASH_INFO and, when the board is configured, its module/channel/valve tables."""
    identity = link.identify(attempts=CONTROL_ATTEMPTS)
    flash = link.request(wire.FlashInfo(), attempts=CONTROL_ATTEMPTS)
    check_flash_info(flash, f"{link.url}: board {identity.board_id!r}")
    description = None
    if identity.flags & wire.BoardFlags.CONFIG_VALID:
        description = link.describe(identity)
    return BoardInfo(identity, flash, description)


def next_generation(flash: wire.FlashInfoReply) -> int:
    """The generation a new image gets: the one after the newest the board holds, in serial
    order (4294967295 wraps to 1; :func:`~hullwatch.hal.config_image.generation_newer`)."""
    newest = 0
    for s in flash.slots:
        if s.state in (wire.SlotState.ACTIVE, wire.SlotState.VALID) and generation_newer(s.generation, newest):
            newest = s.generation
    return generation_after(newest)


def flash_config(link: BoardLink, config: BoardConfig, *, key: bytes | None = None,
                 force: bool = False, verify: str = "crc",
                 progress: Progress | None = None) -> FlashResult:
    """Flash ``config`` (a validated source) to the board on ``link``.

    IDENTIFY; refuse another board's image unless ``force``; FLASH_INFO; build the image with
    the board's next generation (HMAC-tagged with ``key``); then :func:`flash_image`.
    """
    identity = link.identify(attempts=CONTROL_ATTEMPTS)
    check_board(config, identity, force, link.url)
    info = link.request(wire.FlashInfo(), attempts=CONTROL_ATTEMPTS)
    image = encode_image(config.with_generation(next_generation(info)), key=key)
    return flash_image(link, image, force=force, verify=verify, progress=progress,
                       identity=identity, info=info)


def check_board(config: BoardConfig, identity: wire.IdentifyReply, force: bool, url: str) -> None:
    """Raise WrongBoardError when ``config`` is for another board id and ``force`` is not set."""
    if config.board_id != identity.board_id and not force:
        raise WrongBoardError(
            f"the image is built for board {config.board_id!r}, but the board on {url} is "
            f"{identity.board_id!r}; use --force to flash it anyway")


def flash_image(link: BoardLink, image: bytes, *, force: bool = False, verify: str = "crc",
                progress: Progress | None = None, identity: wire.IdentifyReply | None = None,
                info: wire.FlashInfoReply | None = None) -> FlashResult:
    """Write ``image`` (bytes from :func:`~hullwatch.hal.config_image.encode_image`) to the
    board's inactive slot, verify it, commit, and confirm. See the module docstring."""
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    config = decode_image(image).config  # the host checks its own image first
    if config.generation == 0:
        raise InputError("the image has generation 0: an image to flash has 1 .. 4294967295 (0 "
                         "only in a TOML source, which `hullwatch flash` gives the board's next)")
    started = time.perf_counter()
    if identity is None:
        identity = link.identify(attempts=CONTROL_ATTEMPTS)
        check_board(config, identity, force, link.url)
    if info is None:
        info = link.request(wire.FlashInfo(), attempts=CONTROL_ATTEMPTS)
    check_flash_info(info, f"{link.url}: board {identity.board_id!r}")
    if len(image) > info.slot_size:
        raise ImageTooLargeError(f"the image is {len(image)} bytes; the board's slots hold "
                                 f"{info.slot_size}")
    floor = next((s.generation for s in info.slots if s.state == wire.SlotState.ACTIVE), 0)
    if not generation_newer(config.generation, floor):
        raise InputError(f"the image has generation {config.generation}, not newer than the "
                         f"board's active generation {floor} (the next is "
                         f"{generation_after(floor)}); rebuild it from its TOML source")
    result = FlashResult(
        board_id=identity.board_id, slot=wire.NO_SLOT, generation=config.generation,
        crc32=image_crc(image), size=len(image), block_size=min(info.block_size, wire.MAX_BLOCK),
        verify=verify, previous_generation=identity.generation,
    )
    runs = _runs(identity)
    try:
        for result.passes in range(1, WRITE_PASSES + 1):
            t0 = time.perf_counter()
            result.slot = _write(link, image, result, progress)
            t1 = time.perf_counter()
            bad = _verify(link, image, result, progress)
            result.phase_seconds["write"] = t1 - t0
            result.phase_seconds["verify"] = time.perf_counter() - t1
            if bad is None:
                break
            if result.passes == WRITE_PASSES:
                _abort_quietly(link)
                raise FlashError(f"verify failed: {bad}, after {WRITE_PASSES} passes; nothing was "
                                 f"committed: the board still runs {runs}")
    except NakError as exc:
        _abort_quietly(link)
        raise FlashError(f"the board refused: {exc.reason}; nothing was committed: the board "
                         f"still runs {runs}") from exc
    except LinkError as exc:
        raise FlashError(f"the link failed before the commit ({exc}); the board was not switched: "
                         f"it still runs {runs}. Re-run the flash once the board answers") from exc
    _commit(link, result, runs)
    result.seconds = time.perf_counter() - started
    return result


def _block_timeout(link: BoardLink, nbytes: int) -> float:
    # The request and its response cross the line once each: allow twice the block's wire time.
    return BLOCK_TIMEOUT_S + 2 * link.wire_time(nbytes + 32)


def _block_request(link: BoardLink, msg: wire.Message, nbytes: int, result: FlashResult) -> object:
    """One block request with per-block retries (BLOCK_ATTEMPTS). NAKs and port failures are
    not retried; the last timeout or garbled response is raised after the bound."""
    timeout = _block_timeout(link, nbytes)
    for attempt in range(1, BLOCK_ATTEMPTS + 1):
        try:
            return link.request(msg, attempts=1, timeout_s=timeout)
        except (LinkTimeout, ProtocolError) as exc:
            if attempt == BLOCK_ATTEMPTS:
                where = getattr(msg, "offset", 0)
                raise type(exc)(f"{wire.MsgType(msg.TYPE).name} at offset {where}: no valid "
                                f"response after {BLOCK_ATTEMPTS} attempts ({exc})") from exc
            result.retries += 1
    raise AssertionError("unreachable")


def _write(link: BoardLink, image: bytes, result: FlashResult, progress: Progress | None) -> int:
    begin = link.request(wire.FlashBegin(len(image), result.crc32), attempts=CONTROL_ATTEMPTS)
    if begin.size != len(image) or begin.slot not in (0, 1):
        raise ProtocolError(f"FLASH_BEGIN: board answered slot {begin.slot}, size {begin.size}; "
                            f"expected slot 0 or 1, size {len(image)}")
    block = result.block_size
    for offset in range(0, len(image), block):
        data = image[offset:offset + block]
        reply = _block_request(link, wire.FlashWrite(offset, data), len(data), result)
        if reply.written != offset + len(data):  # type: ignore[attr-defined]
            raise ProtocolError(f"FLASH_WRITE at offset {offset}: board says {reply.written} "  # type: ignore[attr-defined]
                                f"bytes written, expected {offset + len(data)}")
        if progress:
            progress("write", offset + len(data), len(image))
    return begin.slot


def _verify(link: BoardLink, image: bytes, result: FlashResult,
            progress: Progress | None) -> str | None:
    """Check what the board's flash holds, block by block. Returns a description of the first
    bad block, or None when every block matches."""
    block = result.block_size
    for offset in range(0, len(image), block):
        want = image[offset:offset + block]
        if result.verify == "crc":
            reply = _block_request(link, wire.FlashCrc(result.slot, offset, len(want)), 16, result)
            got = reply.crc32  # type: ignore[attr-defined]
            if got != crc32(want):
                return (f"block at offset {offset}: the board's CRC-32 is {got:#010x}, the image's "
                        f"{crc32(want):#010x}")
        else:
            reply = _block_request(link, wire.FlashRead(result.slot, offset, len(want)), len(want),
                                   result)
            got_bytes = reply.data  # type: ignore[attr-defined]
            if got_bytes != want:
                first = next((i for i, (a, b) in enumerate(zip(got_bytes, want)) if a != b),
                             min(len(got_bytes), len(want)))
                return (f"byte {offset + first} reads back {got_bytes[first:first + 1].hex() or 'nothing'},"
                        f" the image has {want[first:first + 1].hex()}")
        if progress:
            progress("verify", offset + len(want), len(image))
    return None


def _commit(link: BoardLink, result: FlashResult, runs: str) -> None:
    """FLASH_COMMIT once, then confirm by IDENTIFY that the board runs the new image."""
    try:
        reply = link.request(wire.FlashCommit(), attempts=1, timeout_s=COMMIT_TIMEOUT_S)
    except NakError as exc:
        hint = {wire.NakCode.FLASH_TAG_MISSING: " (hint: the board holds an HMAC key: flash with "
                                                "--key FILE)",
                wire.NakCode.FLASH_TAG_MISMATCH: " (hint: --key names another key than the "
                                                 "board's)"}.get(exc.code, "")
        raise FlashError(f"the board refused the commit: {exc.reason}; it still runs {runs}"
                         f"{hint}") from exc
    except LinkError as exc:
        # The commit may have landed with its reply lost: ask the board what it runs.
        try:
            identity = link.identify(attempts=CONTROL_ATTEMPTS)
        except LinkError as exc2:
            raise FlashError(f"the link failed during the commit ({exc}) and the board does not "
                             f"answer ({exc2}); it runs either {runs} or the new generation "
                             f"{result.generation}: check with `hullwatch board-info`",
                             board_switched=None) from exc2
        if identity.generation != result.generation:
            raise FlashError(f"the commit got no answer ({exc}) and the board still runs "
                             f"{_runs(identity)}; re-run the flash") from exc
    else:
        if (reply.generation, reply.crc32) != (result.generation, result.crc32):
            raise FlashError(f"the board answered the commit with generation {reply.generation}, "
                             f"image CRC {reply.crc32:#010x}; expected {result.generation}, "
                             f"{result.crc32:#010x}", board_switched=None)
        try:
            identity = link.identify(attempts=CONTROL_ATTEMPTS)
        except LinkError as exc:
            raise FlashError(f"the board committed generation {result.generation} but then "
                             f"stopped answering ({exc}); check with `hullwatch board-info`",
                             board_switched=True) from exc
    confirmed = (identity.generation, identity.config_crc32, identity.active_slot)
    if confirmed != (result.generation, result.crc32, result.slot):
        raise FlashError(f"after the commit the board reports {_runs(identity)}; expected "
                         f"generation {result.generation} in slot {result.slot_name}, image CRC "
                         f"{result.crc32:#010x}", board_switched=None)


def _abort_quietly(link: BoardLink) -> None:
    # Ends the board's flash session; if even that fails the session dies with the next begin.
    try:
        link.request(wire.FlashAbort(), attempts=1)
    except LinkError:
        pass


def load_key(path: str) -> bytes:
    """Read an HMAC key file in the strict format of docs/config-image.md ("Key files"): hex as
    text (32..128 hex digits, whitespace ignored) or raw bytes (16..64); a text file that is
    almost hex is refused with the offending byte offset.

    Raises InputError naming the file; FileNotFoundError if it is missing. The file's
    permissions are checked by :func:`~hullwatch.hal.keyfile.key_file_exposure`.
    """
    try:
        return read_key_file(path)
    except ConfigImageError as exc:
        raise InputError(str(exc)) from exc


def config_from_description(description: BoardDescription, identity: wire.IdentifyReply) -> BoardConfig:
    """The configuration a board reports through DESCRIBE_* (calibration as the wire's float32),
    as a BoardConfig for display. Not validated: it shows what the board runs."""
    names = [m.name for m in description.modules]

    def name(i: int) -> str:
        return names[i] if i < len(names) else f"#{i}"

    return BoardConfig(
        board_id=identity.board_id, generation=identity.generation,
        sample_rate_hz=identity.sample_rate_hz, oversampling=0,
        hil_allowed=bool(identity.flags & wire.BoardFlags.HIL_ALLOWED),
        modules=tuple(ModuleConfig(m.name, m.volume_m3) for m in description.modules),
        channels=tuple(ChannelConfig(c.id, ChannelKind(c.kind), name(c.module), c.cal_offset,
                                     c.cal_gain, c.cal_tempco, c.valid_min, c.valid_max)
                       for c in description.channels),
        valves=tuple(ValveConfig(v.id, ValveKind(v.kind), name(v.module_a),
                                 None if v.module_b == wire.NO_MODULE else name(v.module_b),
                                 v.actuation_timeout_s) for v in description.valves),
    )
