"""Board identity: the board under test is a hullwatch sensor board speaking protocol 1.x, and
its configuration fits the scenario's station (the fixture refuses it otherwise)."""

from hullwatch.tools.board.pytest_plugin import layout_differences


def test_board_identifies_itself(board):
    assert board.board_id  # the id in IDENTIFY, e.g. hwb-emu-0001 for the emulator
    assert board.protocol.startswith("1.")
    if board.emulated:
        assert board.board_id == "hwb-emu-0001"


def test_board_fits_the_station(hil_device, plant):
    assert layout_differences(hil_device.layout, plant.layout) == []
    assert hil_device.info.details["board"]["generation"] >= 1
    assert hil_device.info.details["valve_feedback"] == "plant (stimulated)"
