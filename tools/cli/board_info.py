"""``hullwatch board-info``: what the USB sensor board runs."""

from __future__ import annotations

import argparse
from typing import Any

from ...hal import wire
from ...hal.board_link import BoardLink
from ...hal.config_text import summary_lines
from ..board.flashing import config_from_description, read_board_info
from .common import add_device_argument, naming
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch board-info --device /dev/ttyACM0
  hullwatch board-info --device emuboard://bench?flash=board.flash
  hullwatch board-info --device socket://192.168.1.20:7000
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "board-info",
        help=SUMMARIES["board-info"],
        description="Identify the board and print its id, firmware and protocol versions, both "
        "configuration slots (state, generation, size, image CRC), the active slot, and the "
        "module, channel and valve tables it runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_argument(p, required=True, help="the board: a serial port or any pyserial URL (alias: --port)")
    p.set_defaults(func=handler)


def info_lines(info: Any) -> list[str]:
    """The board-info text of a :class:`~hullwatch.tools.board.flashing.BoardInfo`."""
    ident, flash = info.identity, info.flash
    flags = [f.name for f in wire.BoardFlags if ident.flags & f] or ["none"]
    out = [
        f"board id:        {ident.board_id}",
        f"firmware:        {ident.firmware_version}",
        f"protocol:        {ident.protocol_version}",
        f"flags:           {', '.join(str(f) for f in flags)}",
        f"flash:           {ident.slot_count} slots x {flash.slot_size} bytes, blocks of "
        f"{flash.block_size} bytes, HMAC key {'held' if ident.flags & wire.BoardFlags.KEY_PRESENT else 'none'}",
    ]
    for i, s in enumerate(flash.slots):
        try:
            state = wire.SlotState(s.state).name
        except ValueError:
            state = f"state {s.state}"
        detail = (f"generation {s.generation}, {s.length} bytes, image CRC {s.crc32:#010x}"
                  if s.state in (wire.SlotState.ACTIVE, wire.SlotState.VALID) else "")
        out.append(f"slot {'AB'[i] if i < 2 else i}:          {state:<8} {detail}".rstrip())
    if ident.active_slot == wire.NO_SLOT:
        out.append("active:          none: the board has no valid configuration (flash one)")
        return out
    out.append(f"active:          slot {'AB'[ident.active_slot]}, generation {ident.generation}, "
               f"image CRC {ident.config_crc32:#010x}")
    out.append(f"sample rate:     {ident.sample_rate_hz} Hz")
    out.append(f"HIL allowed:     {'yes' if ident.flags & wire.BoardFlags.HIL_ALLOWED else 'no'}")
    if info.description is not None:
        out += summary_lines(config_from_description(info.description, ident), header=False)
    return out


def handler(args: argparse.Namespace) -> int:
    with naming("--device"):
        link = BoardLink.open(args.device)
    try:
        info = read_board_info(link)
    finally:
        link.close()
    for line in info_lines(info):
        print(line)
    return 0
