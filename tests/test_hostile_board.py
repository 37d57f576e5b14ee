"""The board against hostile hosts, and the host against a board that lies.

A board must survive any input (frames over the documented limits, configs the protocol cannot
carry, a host of another major) and keep what protocol.md promises (BOOT de-energises the valves,
generations wrap). A host must refuse a board whose description or replies are impossible, with
exit status 4 and the field named, and never a traceback.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import pytest
from cobs import cobs

from hullwatch.hal import wire
from hullwatch.hal.board_check import BoardDescriptionError
from hullwatch.hal.board_link import BoardLink
from hullwatch.hal.config_image import (
    ConfigSourceError,
    encode_image,
    generation_after,
    generation_newer,
    image_crc,
    validate_config,
)
from hullwatch.hal.errors import NakError
from hullwatch.hal.framing import MAX_PAYLOAD, MAX_WIRE_FRAME, crc16
from hullwatch.hal.wire import MsgType, NakCode
from hullwatch.sim.board_emulator import BoardEmulator, MemoryStorage, open_flash
from hullwatch.sim.board_flash import BoardFlash, config_for_scenario, default_factory_config, file_size
from hullwatch.sim.urlhandler import protocol_emuboard
from hullwatch.tools.board import flashing
from hullwatch.tools.cli import main


def raw_frame(msg_type: int, seq: int, payload: bytes) -> bytes:
    """A frame built by hand, bypassing the encoder's MAX_PAYLOAD check."""
    body = bytes((msg_type, seq)) + payload
    crc = crc16(body)
    return cobs.encode(body + bytes((crc >> 8, crc & 0xFF))) + b"\x00"


def answers(board: BoardEmulator, data: bytes) -> list[wire.Message]:
    reader = wire.FrameReader()
    return [wire.decode(f.type, f.payload) for f in reader.feed(board.receive(data))]


@pytest.fixture
def board() -> BoardEmulator:
    return BoardEmulator(open_flash(None))


# -- the board against hostile input ---------------------------------------------------------


@pytest.mark.parametrize("size", [MAX_PAYLOAD + 1, MAX_PAYLOAD + 5, MAX_PAYLOAD + 11, MAX_PAYLOAD + 40])
def test_oversize_ping_is_dropped_and_the_board_lives(board: BoardEmulator, size: int) -> None:
    frame = raw_frame(MsgType.PING, 1, b"\x55" * size)
    assert answers(board, frame) == []
    assert board.rx_counters()["oversized"] == 1
    # The board still serves, the largest legal PING included.
    ok = wire.encode(wire.Ping(b"\x55" * MAX_PAYLOAD), 2)
    assert len(ok) <= MAX_WIRE_FRAME
    assert answers(board, ok) == [wire.PingReply(b"\x55" * MAX_PAYLOAD)]


def test_a_reply_that_cannot_be_encoded_is_naked_internal(board: BoardEmulator) -> None:
    board._handlers[MsgType.PING] = lambda m: wire.PingReply(b"x" * (MAX_PAYLOAD + 1))
    (nak,) = answers(board, wire.encode(wire.Ping(b"a"), 3))
    assert isinstance(nak, wire.Nak) and nak.code == NakCode.INTERNAL
    assert board.counters["internal_errors"] == 1


def test_config_too_big_for_samples_is_refused_at_validation(tmp_path: Path) -> None:
    base = default_factory_config()
    pressure = [c for c in base.channels if c.kind == 0]
    module = base.modules[0].name
    extra = tuple(dataclasses.replace(pressure[0], id=f"{module}.p{n}", module=module) for n in range(4, 100))
    big = dataclasses.replace(base, channels=base.channels + extra)
    with pytest.raises(ConfigSourceError, match=r"channels: .*SAMPLES payload of \d+ bytes"):
        validate_config(big, "board.toml")
    from hullwatch.hal.config_image import config_to_toml

    src = tmp_path / "big.toml"
    src.write_text(config_to_toml(big))
    assert main(["flash", str(src), "--dry-run"]) == 2


def test_boot_reset_de_energises_valves_to_closed() -> None:
    clock = [0.0]
    board = BoardEmulator(open_flash(None), clock=lambda: clock[0])
    hatch = 0
    answers(board, wire.encode(wire.CommandValve(hatch, 0), 1))
    clock[0] += 100.0  # long past any travel time: the hatch is closed
    (reply,) = answers(board, wire.encode(wire.ReadValves(), 2))
    assert reply.valves[hatch].feedback == 0
    answers(board, wire.encode(wire.Reset(wire.ResetKind.BOOT), 3))
    (reply,) = answers(board, wire.encode(wire.ReadValves(), 4))
    # Right after the reset the closed hatch still reads closed, every valve is uncommanded and
    # any open one is on its way to closed.
    assert reply.valves[hatch].feedback == 0
    assert all(v.commanded == wire.ValveCommand.NONE for v in reply.valves)
    clock[0] += 100.0
    (reply,) = answers(board, wire.encode(wire.ReadValves(), 5))
    assert all(v.feedback == 0 for v in reply.valves)


def test_soft_reset_keeps_the_valves(board: BoardEmulator) -> None:
    (before,) = answers(board, wire.encode(wire.ReadValves(), 1))
    answers(board, wire.encode(wire.Reset(wire.ResetKind.SOFT), 2))
    (after,) = answers(board, wire.encode(wire.ReadValves(), 3))
    assert [v.feedback for v in after.valves] == [v.feedback for v in before.valves]


def test_version_rule_naks_everything_but_identify_for_another_major(board: BoardEmulator) -> None:
    (ident,) = answers(board, wire.encode(wire.Identify(2, 0), 1))
    assert ident.protocol_major == 1  # IDENTIFY is answered whatever the host's version
    for n, msg in enumerate((wire.ReadValves(), wire.ReadSamples(), wire.Ping(b"x"), wire.FlashInfo())):
        (nak,) = answers(board, wire.encode(msg, 10 + n))
        assert isinstance(nak, wire.Nak) and nak.code == NakCode.VERSION, msg
    answers(board, wire.encode(wire.Identify(1, 1), 20))
    (reply,) = answers(board, wire.encode(wire.ReadValves(), 21))
    assert isinstance(reply, wire.ValvesReply)


def test_generation_order_wraps() -> None:
    top = 0xFFFFFFFF
    assert generation_after(top) == 1 and generation_after(0) == 1 and generation_after(7) == 8
    assert generation_newer(1, top) and not generation_newer(top, 1)
    assert generation_newer(5, 0) and not generation_newer(0, 5)
    assert generation_newer(2, 1) and not generation_newer(1, 1)


def test_a_board_at_the_last_generation_can_still_be_flashed() -> None:
    protocol_emuboard._BOARDS["gen-wrap"] = protocol_emuboard.EmulatedLink(
        BoardEmulator(open_flash(None)), protocol_emuboard.LineFaults())
    try:
        link = BoardLink.open("emuboard://gen-wrap")
        config = default_factory_config()
        # Serial order: a jump of 2^31 or more is not "newer", so climb in two steps.
        for generation in (0x7FFFFFFF, 0xC0000000, 0xFFFFFFFF):
            result = flashing.flash_image(link, encode_image(config.with_generation(generation)))
            assert result.generation == generation
        with pytest.raises(flashing.InputError, match="not newer"):
            flashing.flash_image(link, encode_image(config.with_generation(0x7FFFFFFF)))
        again = flashing.flash_config(link, config)
        assert again.generation == 1
        assert flashing.flash_config(link, config).generation == 2
        link.close()
    finally:
        protocol_emuboard.forget("gen-wrap")


def test_stale_generation_still_refused_after_wrap() -> None:
    flash = BoardFlash.format(MemoryStorage(file_size()), factory_config=None)
    config = default_factory_config()
    flash.flash_image(encode_image(config.with_generation(5)))
    from hullwatch.sim.board_flash import FlashRefused

    with pytest.raises(FlashRefused, match="not newer"):
        flash.flash_image(encode_image(config.with_generation(5 + 0x80000000)))


# -- the host against a board that lies ------------------------------------------------------


def lying(name: str, **mutations: Callable[[Any], Any]) -> str:
    """Register ``emuboard://NAME``: a good board whose replies pass through ``mutations``
    (message type name -> function of the reply)."""
    board = BoardEmulator(open_flash(None))
    for type_name, mutate in mutations.items():
        t = MsgType[type_name]
        board._handlers[t] = (lambda h, f: lambda m: f(h(m)))(board._handlers[t], mutate)
    protocol_emuboard._BOARDS[name] = protocol_emuboard.EmulatedLink(board, protocol_emuboard.LineFaults())
    return f"emuboard://{name}"


def _channel(index: int, **changes: Any) -> Callable[[Any], Any]:
    return lambda r: dataclasses.replace(r, **changes) if r.index == index else r


LIES = {
    "active-slot-7": ({"IDENTIFY": lambda r: dataclasses.replace(r, active_slot=7)},
                      "IDENTIFY_REPLY.active_slot"),
    "channel-kind-9": ({"DESCRIBE_CHANNEL": _channel(2, kind=9)}, "CHANNEL_ENTRY 2 ('soyuz-dm.p3').kind"),
    "valve-kind-7": ({"DESCRIBE_VALVE": lambda r: dataclasses.replace(r, kind=7)}, "VALVE_ENTRY 0"),
    "volume": ({"DESCRIBE_MODULE": lambda r: dataclasses.replace(r, volume_m3=-1e308)},
               "MODULE_ENTRY 0.volume_m3"),
    "nan-range": ({"DESCRIBE_CHANNEL": _channel(1, valid_min=math.nan)}, "CHANNEL_ENTRY 1.valid_min"),
    "module-index": ({"DESCRIBE_CHANNEL": _channel(0, module=40)}, "CHANNEL_ENTRY 0 ('soyuz-dm.p1').module"),
    "slots": ({"FLASH_INFO": lambda r: dataclasses.replace(r, active_slot=9)}, "FLASH_INFO_REPLY.active_slot"),
}


@pytest.mark.parametrize("case", sorted(LIES))
def test_board_info_refuses_a_lying_board_with_exit_4(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    mutations, field = LIES[case]
    url = lying(f"lie-{case}", **mutations)
    try:
        assert main(["board-info", "--port", url]) == 4
    finally:
        protocol_emuboard.forget(f"lie-{case}")
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["volume", "nan-range", "channel-kind-9"])
def test_hil_run_refuses_a_lying_board(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mutations, field = LIES[case]
    url = lying(f"run-{case}", **mutations)
    try:
        code = main(["run", "--device", url, "--scenario", "soyuz-ms09", "--until", "2s", "--quiet",
                     "--capture", str(tmp_path / "x.tm")])
    finally:
        protocol_emuboard.forget(f"run-{case}")
    assert code == 4
    assert field in capsys.readouterr().err


def test_valves_reply_with_extra_valves_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = wire.ValveState(0, 0, 0)
    url = lying("extra-valves", READ_VALVES=lambda r: dataclasses.replace(r, valves=r.valves + (extra, extra)))
    try:
        code = main(["run", "--device", url, "--scenario", "soyuz-ms09", "--until", "2s", "--quiet",
                     "--capture", str(tmp_path / "x.tm")])
    finally:
        protocol_emuboard.forget("extra-valves")
    assert code == 4
    assert "VALVES_REPLY.valve_count" in capsys.readouterr().err


def test_hil_enter_reply_active_0_is_not_trusted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = lying("hil-liar", HIL_ENTER=lambda r: wire.HilEnterReply(0))
    try:
        code = main(["run", "--device", url, "--scenario", "soyuz-ms09", "--until", "2s", "--quiet",
                     "--capture", str(tmp_path / "x.tm")])
    finally:
        protocol_emuboard.forget("hil-liar")
    assert code == 4
    assert "HIL_ENTER 1 with active = 0" in capsys.readouterr().err


def test_a_run_whose_board_goes_silent_exits_4_with_a_stale_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = lying("silent")
    served = [0]
    board = protocol_emuboard.link("silent").board
    receive = board.receive

    def silent_after_setup(data: bytes) -> bytes:
        served[0] += 1
        return receive(data) if served[0] < 200 else b""

    board.receive = silent_after_setup  # type: ignore[method-assign]
    try:
        code = main(["run", "--device", url, "--scenario", "soyuz-ms09", "--until", "30s",
                     "--capture", str(tmp_path / "x.tm")])
    finally:
        protocol_emuboard.forget("silent")
    out, err = capsys.readouterr()
    assert code == 4
    assert "verdict: STALE DATA: the device link was lost at" in out
    assert "stale data" in err


def test_a_link_that_drops_and_recovers_gives_the_normal_verdict(tmp_path: Path) -> None:
    from hullwatch.tools.closed_loop.runner import run_scenario
    from hullwatch.tools.board.hil_device import open_hil_device

    url = lying("recovers")
    device = open_hil_device(url, scenario="soyuz-ms09")
    try:
        line = protocol_emuboard.link("recovers").faults
        line.unplug_until(20.0, device.clock.now)
        result = run_scenario(device, until=60.0)
    finally:
        device.close()
        protocol_emuboard.forget("recovers")
    assert result.health["device"]["link_lost"] == 1 and result.health["device"]["reconnects"] == 1
    assert not result.stale_data and not result.verdict.startswith("STALE")


def test_a_bare_run_whose_board_is_unplugged_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a scenario (the board's own sensors, real time): the cable is pulled 1 s into a
    3 s run and never put back."""
    import threading

    url = lying("bare-unplugged")
    pull = threading.Timer(1.0, protocol_emuboard.link("bare-unplugged").faults.unplug)
    pull.start()
    try:
        code = main(["run", "--device", url, "--until", "3s", "--capture", str(tmp_path / "x.tm")])
    finally:
        pull.cancel()
        protocol_emuboard.forget("bare-unplugged")
    out = capsys.readouterr().out
    assert code == 4
    assert "verdict: STALE DATA: the device link was lost at" in out


def test_an_image_too_big_for_samples_is_never_committed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image built without the host's validation (96 channels: SAMPLES would be 1287 bytes)
    is refused at FLASH_COMMIT, so a board can never boot it and die on READ_SAMPLES."""
    from hullwatch.hal import config_image
    from hullwatch.sim.board_flash import FlashRefused

    base = default_factory_config()
    pressure = [c for c in base.channels if c.kind == 0]
    module = base.modules[0].name
    extra = tuple(dataclasses.replace(pressure[0], id=f"{module}.p{n}", module=module) for n in range(4, 69))
    big = dataclasses.replace(base, channels=base.channels + extra, generation=2)
    with monkeypatch.context() as m:
        m.setattr(config_image, "validate_config", lambda config, source="": None)
        image = encode_image(big)
    board = BoardEmulator(open_flash(None))
    with pytest.raises(FlashRefused, match="SAMPLES payload"):
        board.flash.flash_image(image)
    (reply,) = answers(board, wire.encode(wire.ReadSamples(), 1))
    assert isinstance(reply, wire.Samples) and len(reply.channels) == len(base.channels)
