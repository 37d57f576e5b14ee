"""Flashing the board: ``hullwatch flash`` / ``board-info`` against the emulated board, the board's
NAKs for bad input, retries on a noisy line, and a link that dies mid-flash.

The board is the emulator behind the in-process ``emuboard://NAME?flash=FILE`` pyserial URL, so
the real host code (BoardLink, tools.flashing, the CLI) runs byte for byte against it.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest

from hullwatch.hal import wire
from hullwatch.hal.board_link import BoardLink
from hullwatch.hal.config_image import (
    config_from_dict,
    config_to_toml,
    encode_image,
    image_crc,
    load_config,
)
from hullwatch.hal.errors import NakError
from hullwatch.sim.board_emulator import BoardEmulator
from hullwatch.sim.board_flash import DATA_AT, BoardFlash, FileStorage, file_size
from hullwatch.sim.urlhandler import protocol_emuboard as emuboard
from hullwatch.tools.board import flashing
from hullwatch.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "board.toml"
KEY = bytes(range(100, 132))
_names = itertools.count()


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(port URL, flash file) of a fresh emulated board on the soyuz-ms09 factory image."""
    name = f"flash-test-{next(_names)}"
    path = tmp_path / "board.flash"
    yield f"emuboard://{name}?flash={path}", path
    emuboard.forget(name)


def name_of(url: str) -> str:
    return emuboard.parse_url(url)[0]


def restart(url: str) -> None:
    """Power the board off and on: a fresh emulator boots from the same flash file."""
    emuboard.forget(name_of(url))


def active(path: Path) -> tuple[int | None, int]:
    """(active slot, generation) of the flash file, read by a fresh boot."""
    flash = BoardFlash(FileStorage(path))
    try:
        info = flash.info()
        return info.active_slot, info.generation
    finally:
        flash.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_toml(tmp_path: Path, name: str, **changes: Any) -> Path:
    data = tomllib.loads(EXAMPLE.read_text())
    data.update(changes)
    path = tmp_path / name
    path.write_text(config_to_toml(config_from_dict(data, name)))
    return path


# --------------------------------------------------------------------------------------------
# The CLI, as a user runs it


def test_flash_and_board_info(board: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, path = board
    code, out, err = run(capsys, "board-info", "--port", url)
    assert code == 0, err
    assert "board id:        hwb-emu-0001" in out
    assert "slot A:          ACTIVE   generation 1" in out and "slot B:          EMPTY" in out

    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url)
    assert code == 0, err
    image = encode_image(load_config(EXAMPLE).with_generation(2))
    assert (f"hwb-emu-0001: flashed generation 2 to slot B ({len(image)} bytes, image CRC "
            f"{image_crc(image):#010x}), verified by CRC, committed and confirmed") in out
    assert err == ""  # not a terminal: no progress bar

    code, out, err = run(capsys, "board-info", "--port", url)
    assert code == 0, err
    assert f"active:          slot B, generation 2, image CRC {image_crc(image):#010x}" in out
    assert "slot A:          VALID    generation 1" in out
    assert "firmware:" in out and "protocol:        1.2" in out
    for ident in ("zvezda.p3", "usos.t2", "progress-air.flow", "zarya-usos", "30000..125000 Pa"):
        assert ident in out

    # Flashing again alternates slots; a restarted board boots what was committed last.
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url, "--verify", "read")
    assert code == 0, err
    assert "generation 3 to slot A" in out and "read back" in out
    restart(url)
    assert active(path) == (0, 3)
    code, out, err = run(capsys, "board-info", "--port", url)
    assert "active:          slot A, generation 3" in out


def test_dry_run_validates_without_touching_the_board(board: tuple[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    url, path = board
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--dry-run")
    assert code == 0, err
    assert "examples/board.toml: valid; image 1895 bytes" in out
    assert "dry run: the board was not touched" in out
    assert "progress-air" in out and "channels (31):" in out
    run(capsys, "board-info", "--port", url)  # the board exists now
    before = path.read_bytes()
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--dry-run", "--port", url,
                         "--save-image", str(tmp_path / "img.bin"))
    assert code == 0 and path.read_bytes() == before
    assert (tmp_path / "img.bin").read_bytes() == encode_image(load_config(EXAMPLE).with_generation(1))


def test_invalid_source_is_refused_before_the_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('id = "zarya.p2"', 'id = "zarya.p1"'))
    code, out, err = run(capsys, "flash", str(bad), "--port", "emuboard://never-opened")
    assert code == 2
    assert err.strip() == (f"hullwatch: error: {bad}: channels[10].id: duplicate channel id "
                           "'zarya.p1' (also channels[9])")
    assert "never-opened" not in emuboard._BOARDS


def test_another_boards_image_needs_force(board: tuple[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url, path = board
    other = write_toml(tmp_path, "other.toml", board_id="hwb-0042")
    code, out, err = run(capsys, "flash", str(other), "--port", url)
    assert code == 2
    assert "built for board 'hwb-0042', but the board on" in err and "is 'hwb-emu-0001'" in err
    assert "--force" in err
    assert active(path) == (0, 1)
    code, out, err = run(capsys, "flash", str(other), "--port", url, "--force")
    assert code == 0, err
    assert active(path) == (1, 2)


def test_port_is_required_unless_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "flash", str(EXAMPLE))
    assert code == 2 and "--device URL is required" in err


def test_missing_port_has_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "board-info", "--port", "/dev/ttyNOPE0")
    assert code == 4 and "no such serial port" in err and "hint:" in err


# --------------------------------------------------------------------------------------------
# HMAC


@pytest.fixture
def keyed_board(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A board that holds KEY, with a tagged factory image."""
    path = tmp_path / "keyed.flash"
    BoardFlash.open(path, key=KEY, factory_config=load_config(EXAMPLE)).close()
    name = f"flash-keyed-{next(_names)}"
    yield f"emuboard://{name}?flash={path}", path
    emuboard.forget(name)


def test_a_board_with_a_key_refuses_untagged_and_wrongly_tagged_images(
        keyed_board: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, path = keyed_board
    code, out, err = run(capsys, "board-info", "--port", url)
    assert "HMAC key held" in out and "KEY_PRESENT" in out

    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url)
    assert code == 4
    assert "the board refused the commit: FLASH_TAG_MISSING: image carries no HMAC tag" in err
    assert "still runs generation 1 (slot A" in err and "flash with --key FILE" in err
    assert active(path) == (0, 1)

    wrong = tmp_path / "wrong.key"
    wrong.write_text(bytes(32).hex() + "\n")
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url, "--key", str(wrong))
    assert code == 4 and "FLASH_TAG_MISMATCH: HMAC tag does not match the board's key" in err
    assert active(path) == (0, 1)

    right = tmp_path / "board.key"
    right.write_bytes(KEY)  # raw bytes work as well as hex
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url, "--key", str(right))
    assert code == 0, err
    assert active(path) == (1, 2)


def test_bad_key_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.key"
    short.write_text("abcd")
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--dry-run", "--key", str(short))
    assert code == 2 and "short.key: a hex key of 4 digits; expected an even count of 32 .. 128" in err
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--dry-run", "--key", str(tmp_path / "none"))
    assert code == 2 and "no such file" in err


# --------------------------------------------------------------------------------------------
# Bad input: a clear error on the host, a NAK with a reason from the board, the board unchanged


@pytest.fixture
def link(board: tuple[str, Path]) -> Iterator[BoardLink]:
    lk = BoardLink.open(board[0])
    yield lk
    lk.close()


def nak_of(lk: BoardLink, msg: wire.Message) -> NakError:
    with pytest.raises(NakError) as info:
        lk.request(msg)
    return info.value


def next_image(lk: BoardLink) -> bytes:
    return encode_image(load_config(EXAMPLE).with_generation(lk.identify().generation + 1))


def write_all(lk: BoardLink, image: bytes) -> None:
    for offset in range(0, len(image), 1024):
        lk.request(wire.FlashWrite(offset, image[offset:offset + 1024]))


def test_board_naks_a_corrupted_image(link: BoardLink, board: tuple[str, Path]) -> None:
    image = next_image(link)
    bad = bytearray(image)
    bad[700] ^= 0x10
    link.request(wire.FlashBegin(len(image), image_crc(image)))
    write_all(link, bytes(bad))
    nak = nak_of(link, wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_CRC_MISMATCH
    assert "stored image CRC-32 is" in nak.reason and f"declared {image_crc(image):#010x}" in nak.reason
    assert active(board[1]) == (0, 1)


def test_board_naks_a_consistent_but_invalid_image(link: BoardLink, board: tuple[str, Path]) -> None:
    image = bytearray(next_image(link))
    at = 12 + 1 + len("hwb-emu-0001") + 4  # header, board id, generation: the sample rate
    image[at:at + 2] = b"\x00\x00"  # 0 Hz, CRC recomputed: only validation can tell
    image[-4:] = image_crc(bytes(image)).to_bytes(4, "little")
    image = bytes(image)
    link.request(wire.FlashBegin(len(image), image_crc(image)))
    write_all(link, image)
    nak = nak_of(link, wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_INVALID_IMAGE
    assert "sample_rate_hz: expected an integer rate in Hz between 1 and 1000, got 0" in nak.reason
    assert active(board[1]) == (0, 1)


def test_board_naks_a_wrong_crc(link: BoardLink, board: tuple[str, Path]) -> None:
    image = next_image(link)
    link.request(wire.FlashBegin(len(image), image_crc(image) ^ 1))
    write_all(link, image)
    nak = nak_of(link, wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_CRC_MISMATCH
    assert active(board[1]) == (0, 1)


def test_board_naks_an_oversized_image(link: BoardLink, board: tuple[str, Path]) -> None:
    nak = nak_of(link, wire.FlashBegin(16385, 0))
    assert nak.code == wire.NakCode.FLASH_BAD_LENGTH
    assert "image of 16385 bytes does not fit the 16384-byte slot" in nak.reason
    link.request(wire.FlashBegin(100, 0))
    nak = nak_of(link, wire.FlashWrite(0, bytes(101)))
    assert nak.code == wire.NakCode.FLASH_OUT_OF_RANGE
    assert active(board[1]) == (0, 1)


def test_host_refuses_an_oversized_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.flash"
    BoardFlash.format(FileStorage(path, create_size=file_size(2048)), slot_size=2048,
                      factory_config=load_config(EXAMPLE)).close()
    data = tomllib.loads(EXAMPLE.read_text())
    data["modules"].append({"name": "extra", "volume_m3": 1.0})
    data["channels"] += [{"id": f"extra.p{i}"} for i in range(1, 10)]
    big = tmp_path / "big.toml"
    big.write_text(config_to_toml(config_from_dict(data, "big")))
    url = f"emuboard://flash-small-{next(_names)}?flash={path}"
    try:
        code, out, err = run(capsys, "flash", str(big), "--port", url)
    finally:
        emuboard.forget(name_of(url))
    assert code == 2 and "the image is 2368 bytes" in err and "the board's slots hold 2048" in err
    assert active(path) == (0, 1)


def test_board_naks_a_block_out_of_order(link: BoardLink, board: tuple[str, Path]) -> None:
    image = next_image(link)
    link.request(wire.FlashBegin(len(image), image_crc(image)))
    nak = nak_of(link, wire.FlashWrite(1024, image[1024:2048]))
    assert nak.code == wire.NakCode.FLASH_OUT_OF_ORDER
    assert "block at offset 1024 out of order; expected offset 0" in nak.reason
    link.request(wire.FlashWrite(0, image[:1024]))
    link.request(wire.FlashWrite(0, image[:1024]))  # a retried block is fine
    nak = nak_of(link, wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_INCOMPLETE and "only 1024 of" in nak.reason
    nak = nak_of(link, wire.FlashWrite(1024, image[1024:2048]))
    assert nak.code == wire.NakCode.FLASH_NO_SESSION  # a refused commit ends the session
    assert active(board[1]) == (0, 1)


def test_board_naks_a_stale_generation(link: BoardLink, board: tuple[str, Path]) -> None:
    image = encode_image(load_config(EXAMPLE).with_generation(1))
    link.request(wire.FlashBegin(len(image), image_crc(image)))
    write_all(link, image)
    nak = nak_of(link, wire.FlashCommit())
    assert nak.code == wire.NakCode.FLASH_STALE_GENERATION
    assert "image generation 1 is not newer than the active generation 1" in nak.reason


def test_a_corrupted_image_file_is_refused_by_the_host(board: tuple[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url, path = board
    image = bytearray(encode_image(load_config(EXAMPLE).with_generation(5)))
    image[100] ^= 0xFF
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(image))
    code, out, err = run(capsys, "flash", str(bad), "--port", url)
    assert code == 2
    assert "bad.bin: not a valid configuration image: at byte offset 1891: CRC-32 mismatch" in err
    good = tmp_path / "good.bin"
    good.write_bytes(encode_image(load_config(EXAMPLE).with_generation(5)))
    code, out, err = run(capsys, "flash", str(good), "--port", url)
    assert code == 0 and "flashed generation 5 to slot B" in out, err


# --------------------------------------------------------------------------------------------
# The line and the link


def test_noisy_line_is_survived_by_per_block_retries(tmp_path: Path) -> None:
    path = tmp_path / "noisy.flash"
    url = f"emuboard://flash-noisy-{next(_names)}?flash={path}&noise=3e-4&seed=3"
    lk = BoardLink.open(url)
    try:
        result = flashing.flash_config(lk, load_config(EXAMPLE))
    finally:
        lk.close()
        emuboard.forget(name_of(url))
    assert result.retries > 0
    assert active(path) == (1, 2)


def _die_after_first_block(url: str) -> flashing.Progress:
    def progress(phase: str, done: int, total: int) -> None:
        if phase == "write" and done == 1024:
            emuboard.link(name_of(url)).faults.unplug()
    return progress


def test_a_link_that_dies_mid_flash_leaves_the_previous_image(board: tuple[str, Path]) -> None:
    url, path = board
    lk = BoardLink.open(url)
    try:
        with pytest.raises(flashing.FlashError) as info:
            flashing.flash_config(lk, load_config(EXAMPLE), progress=_die_after_first_block(url))
    finally:
        lk.close()
    message = str(info.value)
    assert "the link failed before the commit" in message
    assert "the board was not switched: it still runs generation 1 (slot A" in message
    assert info.value.board_switched is False
    emuboard.link(name_of(url)).faults.plug()
    restart(url)
    assert active(path) == (0, 1)
    lk = BoardLink.open(url)  # and the flash, re-run, succeeds
    try:
        assert flashing.flash_config(lk, load_config(EXAMPLE)).generation == 2
    finally:
        lk.close()


def test_a_board_that_stops_answering(board: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, path = board
    monkeypatch.setattr(flashing, "BLOCK_TIMEOUT_S", 0.02)
    lk = BoardLink.open(url)

    def go_silent(phase: str, done: int, total: int) -> None:
        if phase == "write" and done == 1024:
            emuboard.link(name_of(url)).faults.drop = 1.0  # every byte lost, both ways

    try:
        with pytest.raises(flashing.FlashError) as info:
            flashing.flash_config(lk, load_config(EXAMPLE), progress=go_silent)
    finally:
        lk.close()
    message = str(info.value)
    assert f"FLASH_WRITE at offset 1024: no valid response after {flashing.BLOCK_ATTEMPTS} attempts" in message
    assert "it still runs generation 1" in message
    assert active(path) == (0, 1)


def test_cli_reports_a_dead_link(board: tuple[str, Path], capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, path = board
    monkeypatch.setattr("hullwatch.tools.cli.flash._progress_bar",
                        lambda: (_die_after_first_block(url), lambda: None))
    code, out, err = run(capsys, "flash", str(EXAMPLE), "--port", url)
    assert code == 4
    assert err.startswith("hullwatch: error: the link failed before the commit")
    assert "it still runs generation 1" in err and "Re-run the flash" in err


class _LoseCommitReply:
    """A board whose first FLASH_COMMIT reply is lost on the line (the commit itself lands)."""

    def __init__(self, inner: BoardEmulator) -> None:
        self.inner = inner
        self.flash = inner.flash
        self.lost = 0

    def receive(self, data: bytes) -> bytes:
        reply = self.inner.receive(data)
        if not self.lost and reply[1:2] == bytes([wire.MsgType.FLASH_COMMIT_REPLY]):
            self.lost += 1
            return b""
        return reply

    def poll(self) -> bytes:
        return self.inner.poll()


def test_a_lost_commit_reply_is_resolved_by_asking_the_board(board: tuple[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, path = board
    monkeypatch.setattr(flashing, "COMMIT_TIMEOUT_S", 0.1)
    lk = BoardLink.open(url)
    try:
        lk.identify()
        emu = emuboard.link(name_of(url))
        emu.board = _LoseCommitReply(emu.board)  # type: ignore[assignment]
        result = flashing.flash_config(lk, load_config(EXAMPLE))
    finally:
        lk.close()
    assert emu.board.lost == 1  # type: ignore[attr-defined]
    assert (result.generation, result.slot) == (2, 1)


class _BadStorage:
    """Flash storage with a stuck bit: a byte at ``offset`` is always stored with bit 0 set."""

    def __init__(self, inner: FileStorage, offset: int) -> None:
        self.inner, self.offset = inner, offset

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        if offset <= self.offset < offset + len(data):
            data = bytearray(data)
            data[self.offset - offset] |= 0x01
        self.inner.write(offset, bytes(data))

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("verify", ["crc", "read"])
def test_verify_catches_what_the_flash_did_not_keep(board: tuple[str, Path], verify: str) -> None:
    url, path = board
    lk = BoardLink.open(url)
    try:
        lk.identify()
        emu = emuboard.link(name_of(url))
        emu.board.flash.close()
        # Slot B's byte 1500 has a stuck bit.
        bad = BoardFlash(_BadStorage(FileStorage(path), DATA_AT + 16384 + 1500))
        emu.board = BoardEmulator(bad)
        image = encode_image(load_config(EXAMPLE).with_generation(2))
        assert image[1500] & 1 == 0
        with pytest.raises(flashing.FlashError) as info:
            flashing.flash_image(lk, image, verify=verify)
    finally:
        lk.close()
    message = str(info.value)
    assert "verify failed:" in message and f"after {flashing.WRITE_PASSES} passes" in message
    assert ("block at offset 1024" if verify == "crc" else "byte 1500 reads back") in message
    assert "nothing was committed: the board still runs generation 1" in message
    assert active(path) == (0, 1)


def test_progress_bar_on_a_terminal(board: tuple[str, Path], capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    code = main(["flash", str(EXAMPLE), "--port", board[0]])
    assert code == 0
    bars = term.getvalue()
    assert "write: 100%" in bars and "verify: 100%" in bars and "1.90k/1.90k" in bars
    assert "flashed generation 2" in capsys.readouterr().out
