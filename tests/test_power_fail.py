"""Power-fail safety of the configuration flash (docs/config-image.md, "Two slots and the commit
rule").

A power cut is modelled at the storage level: :class:`PowerCutStorage` lets N bytes of writes
through (the write that crosses N lands only its first bytes) and then kills the board; a fresh
board booted on the same flash file is the restart. Every restart must boot a valid image, the old
one or the new one, and re-running the interrupted flash must then succeed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hullwatch.hal.board_link import BoardLink
from hullwatch.hal.config_image import (
    BoardConfig,
    ChannelConfig,
    ModuleConfig,
    ValveConfig,
    encode_image,
    image_crc,
    load_config,
)
from hullwatch.hal.interfaces import ChannelKind, ValveKind
from hullwatch.sim.board_emulator import BoardEmulator
from hullwatch.sim.board_flash import (
    BoardFlash,
    FileStorage,
    PowerCut,
    PowerCutStorage,
    default_factory_config,
    file_size,
)
from hullwatch.sim.urlhandler import protocol_emuboard as emuboard
from hullwatch.tools.board import flashing
from hullwatch.tools.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "board.toml"


def small_config(generation: int, gain: float = 0.01) -> BoardConfig:
    """A two-module board: a ~400-byte image, so every byte of a flash can be cut quickly."""
    return BoardConfig(
        board_id="hwb-pf", generation=generation, sample_rate_hz=10, oversampling=4,
        hil_allowed=True,
        modules=(ModuleConfig("a", 10.0), ModuleConfig("b", 20.0)),
        channels=tuple(ChannelConfig(f"{m}.p{i}", ChannelKind.PRESSURE, m, 0.0, gain, 0.0,
                                     30000.0, 125000.0) for m in "ab" for i in (1, 2, 3)),
        valves=(ValveConfig("a-b", ValveKind.HATCH, "a", "b", 2.0),),
    )


def make_board(path: Path, config: BoardConfig, *, slot_size: int, block: int) -> None:
    BoardFlash.format(FileStorage(path, create_size=file_size(slot_size)), config.board_id,
                      slot_size=slot_size, block_size=block, factory_config=config).close()


def reboot(path: Path) -> BoardFlash:
    return BoardFlash(FileStorage(path))


def flash_with_budget(path: Path, image: bytes, budget: int | None) -> PowerCutStorage:
    """Flash ``image`` on the board at ``path`` with the power failing after ``budget`` bytes."""
    storage = PowerCutStorage(FileStorage(path), budget)
    board = BoardFlash(storage)
    try:
        board.flash_image(image)
    except PowerCut:
        pass
    finally:
        storage.close()
    return storage


def test_a_cut_at_every_byte_of_a_flash_boots_old_or_new(tmp_path: Path) -> None:
    path = tmp_path / "board.flash"
    old, new = small_config(1), small_config(2, gain=0.0125)
    make_board(path, old, slot_size=512, block=64)
    pristine = path.read_bytes()
    image = encode_image(new)

    # A full flash, recorded: how many bytes it writes and where its writes end.
    record = flash_with_budget(path, image, None)
    total = record.written
    assert reboot(path).config == new
    assert [n for _, n in record.writes][-2:] == [12, 8]  # the commit: header, then generation

    for budget in range(total):
        path.write_bytes(pristine)
        storage = flash_with_budget(path, image, budget)
        assert storage.cut and storage.written == budget
        board = reboot(path)
        # Until the very last byte lands the old image runs; no budget yields a broken board.
        assert board.active is not None, f"cut after {budget} bytes: no bootable image"
        assert board.config == old, f"cut after {budget} bytes: not the old image"
        assert board.info().crc32 == image_crc(encode_image(old))
        if budget % 97 == 0 or budget >= total - 20:
            # Re-running the interrupted flash succeeds.
            info = board.flash_image(image)
            assert (info.generation, info.crc32) == (2, image_crc(image))
            board.close()
            assert reboot(path).config == new
        else:
            board.close()


def test_a_cut_at_every_write_boundary_of_a_full_size_flash(tmp_path: Path) -> None:
    """The soyuz-ms09 board (a 1.9 KB image in 256-byte blocks) from generation 1 to 2, and then
    from 2 to 3 (writing slot A again, whose older image the erase destroys)."""
    path = tmp_path / "board.flash"
    factory = default_factory_config()
    make_board(path, factory.with_generation(1), slot_size=4096, block=256)
    for old_gen in (1, 2):
        pristine = path.read_bytes()
        new = factory.with_generation(old_gen + 1)
        image = encode_image(new)
        record = flash_with_budget(path, image, None)
        ends, at = [], 0
        for _, n in record.writes:
            at += n
            ends.append(at)
        cuts = sorted({e + d for e in [0] + ends for d in (-1, 0, 1) if 0 <= e + d < record.written})
        assert len(ends) == 2 + -(-len(image) // 256) + 2  # erase x2, blocks, commit x2
        for budget in cuts:
            path.write_bytes(pristine)
            flash_with_budget(path, image, budget)
            board = reboot(path)
            assert board.active is not None and board.config is not None
            assert board.config.generation == old_gen, f"cut after {budget} bytes"
            board.close()
        path.write_bytes(pristine)
        flash_with_budget(path, image, None)
        assert reboot(path).config == new


def test_a_cut_inside_the_final_write_is_the_only_place_the_switch_happens(tmp_path: Path) -> None:
    path = tmp_path / "board.flash"
    make_board(path, small_config(1), slot_size=1024, block=1024)
    pristine = path.read_bytes()
    image = encode_image(small_config(5))
    total = flash_with_budget(path, image, None).written
    seen = []
    for budget in range(total - 8, total + 1):
        path.write_bytes(pristine)
        flash_with_budget(path, image, budget)
        seen.append(reboot(path).info().generation)
    assert seen == [1] * 8 + [5]


def test_power_cut_storage_tears_the_crossing_write(tmp_path: Path) -> None:
    path = tmp_path / "raw"
    path.write_bytes(b"\x00" * 16)
    storage = PowerCutStorage(FileStorage(path), budget=5)
    storage.write(0, b"abc")
    with pytest.raises(PowerCut):
        storage.write(3, b"defgh")
    with pytest.raises(PowerCut):
        storage.write(10, b"z")
    storage.close()
    assert path.read_bytes() == b"abcde" + b"\x00" * 11


# --------------------------------------------------------------------------------------------
# Through the wire: the emulated board loses power in the middle of `hullwatch flash`


class PowerCutBoard:
    """The emulated board on a flash that loses power after ``budget`` bytes of writes. When the
    power goes, the board dies mid-request and its USB port vanishes, as a bus-powered board's
    does (the host sees the port fail)."""

    def __init__(self, path: Path, budget: int | None, faults: object) -> None:
        self.storage = PowerCutStorage(FileStorage(path), budget)
        self.flash = BoardFlash(self.storage)
        self.emulator = BoardEmulator(self.flash)
        self.faults = faults

    def receive(self, data: bytes) -> bytes:
        try:
            return self.emulator.receive(data)
        except PowerCut:
            self.faults.unplug()  # type: ignore[attr-defined]
            return b""

    def poll(self) -> bytes:
        return b"" if self.storage.cut else self.emulator.poll()


def _flash_through_the_wire(url: str, path: Path,
                            budget: int | None) -> tuple[PowerCutBoard, flashing.FlashError | None]:
    """Run a flash of the example config over the wire with the board's power failing after
    ``budget`` bytes; returns the board and the FlashError (None if the flash completed)."""
    link = BoardLink.open(url)
    emu = emuboard.link(emuboard.parse_url(url)[0])
    emu.board.flash.close()
    board = PowerCutBoard(path, budget, emu.faults)
    emu.board = board  # type: ignore[assignment]
    error = None
    try:
        flashing.flash_config(link, load_config(EXAMPLE))
    except flashing.FlashError as exc:
        error = exc
    finally:
        link.close()
        emuboard.forget(emuboard.parse_url(url)[0])
    return board, error


def test_power_cut_at_every_write_of_hullwatch_flash(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "board.flash"
    BoardFlash.open(path, factory_config=load_config(EXAMPLE)).close()
    pristine = path.read_bytes()
    names = iter(range(10_000))

    def url() -> str:
        return f"emuboard://power-{next(names)}?flash={path}"

    board, error = _flash_through_the_wire(url(), path, None)
    assert error is None and reboot(path).info().generation == 2
    writes = board.storage.writes
    total = board.storage.written
    sizes = [n for _, n in writes]
    assert sizes == [20, 16384, 1024, 871, 12, 8]  # erase header, erase data, 2 blocks, commit
    ends = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    budgets = sorted({b for e in ends for b in (e - 1, e, e + 1) if 0 <= b < total}
                     | set(range(total - 20, total)))  # and every byte of the commit

    for budget in budgets:
        path.write_bytes(pristine)
        board, error = _flash_through_the_wire(url(), path, budget)
        assert board.storage.cut, budget
        # The host says what happened.
        assert error is not None
        if budget < total - 20:
            assert "the board was not switched: it still runs generation 1" in str(error)
        else:
            assert error.board_switched is None  # type: ignore[attr-defined]
            assert "check with `hullwatch board-info`" in str(error)
        # Power back on: the restarted board boots the old image, as the user sees it.
        port = url()
        code = main(["board-info", "--port", port])
        out = capsys.readouterr().out
        assert code == 0
        assert "active:          slot A, generation 1," in out, (budget, out)
        # And the interrupted flash, re-run, succeeds.
        code = main(["flash", str(EXAMPLE), "--port", port])
        out = capsys.readouterr().out
        assert code == 0 and "flashed generation 2 to slot B" in out, (budget, out)
        emuboard.forget(emuboard.parse_url(port)[0])
        assert reboot(path).info().generation == 2
