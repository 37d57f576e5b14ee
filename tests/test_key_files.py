"""HMAC key files: the strict format of docs/config-image.md, permission warnings, and a keyed
emulated board from the CLI (`hullwatch board --key FILE`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hullwatch.hal.config_image import ConfigImageError
from hullwatch.hal.keyfile import key_file_exposure, parse_key
from hullwatch.tools.cli import main
from hullwatch.tools.board.hil_device import start_emulator

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "board.toml"
HEX = "00112233445566778899aabbccddeeff" * 2  # 32 bytes


@pytest.mark.parametrize("text, key", [
    (HEX, bytes.fromhex(HEX)),
    (HEX.upper() + "\n", bytes.fromhex(HEX)),
    ("0011 2233 4455 6677\n8899 aabb ccdd eeff\n", bytes.fromhex(HEX[:32])),
    ("ab" * 64, bytes.fromhex("ab" * 64)),
])
def test_hex_keys(text: str, key: bytes) -> None:
    assert parse_key(text.encode()) == key


@pytest.mark.parametrize("text, message", [
    (HEX[:-1] + "g", "byte offset 63 is 'g', not a hex digit"),
    ("0x" + HEX, "byte offset 1 is 'x'"),
    (HEX[:-1], "a hex key of 63 digits"),
    (HEX[:30], "a hex key of 30 digits"),
    ("ab" * 65, "a hex key of 130 digits"),
    ("correct horse battery staple key", "byte offset 1 is 'o'"),
])
def test_almost_hex_text_is_refused_with_its_offset(text: str, message: str) -> None:
    with pytest.raises(ConfigImageError, match=message):
        parse_key(text.encode(), "board.key")


def test_raw_keys() -> None:
    raw = bytes(range(200, 232))
    assert parse_key(raw) == raw
    with pytest.raises(ConfigImageError, match="a raw key of 8 bytes"):
        parse_key(bytes(range(200, 208)))
    with pytest.raises(ConfigImageError, match="a raw key of 65 bytes"):
        parse_key(bytes([255]) * 65)


def test_group_or_world_readable_key_files_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "board.key"
    key.write_text(HEX)
    key.chmod(0o600)
    assert key_file_exposure(key) is None
    key.chmod(0o644)
    assert "readable by its group and everyone (mode 644)" in key_file_exposure(key)
    assert main(["flash", str(EXAMPLE), "--dry-run", "--key", str(key)]) == 0
    assert "warning:" in capsys.readouterr().err
    key.chmod(0o640)
    assert "readable by its group (mode 640)" in key_file_exposure(key)


def test_flash_refuses_an_almost_hex_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "typo.key"
    key.write_text(HEX[:10] + "z" + HEX[11:] + "\n")
    assert main(["flash", str(EXAMPLE), "--dry-run", "--key", str(key)]) == 2
    err = capsys.readouterr().err
    assert "typo.key" in err and "byte offset 10 is 'z'" in err


def test_board_key_makes_a_keyed_emulated_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "board.key"
    key.write_text(HEX + "\n")
    os.chmod(key, 0o600)
    other = tmp_path / "other.key"
    other.write_text("ff" * 32)
    os.chmod(other, 0o600)
    flash = tmp_path / "keyed.flash"
    with start_emulator("--flash", str(flash), "--key", str(key)) as board:
        assert main(["board-info", "--port", board.url]) == 0
        assert "KEY_PRESENT" in capsys.readouterr().out
        assert main(["flash", str(EXAMPLE), "--port", board.url]) == 4
        assert "FLASH_TAG_MISSING" in capsys.readouterr().err
        assert main(["flash", str(EXAMPLE), "--port", board.url, "--key", str(other)]) == 4
        assert "FLASH_TAG_MISMATCH" in capsys.readouterr().err
        assert main(["flash", str(EXAMPLE), "--port", board.url, "--key", str(key)]) == 0
    # The flash file keeps its key: starting it with another one is refused.
    assert main(["board", "--pty", "--flash", str(flash), "--key", str(other)]) == 2
    assert "holds another HMAC key" in capsys.readouterr().err
