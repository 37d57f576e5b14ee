"""``hullwatch board``: run the board emulator on a pseudo-terminal or any serial port."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from ...hal import wire
from ...hal.keyfile import key_file_exposure
from ...hal.ports import open_port
from ...sim.board_emulator import BoardEmulator, EmulatorError, hardware_for_scenario, open_flash
from ...sim.board_factory import DEFAULT_BOARD_ID, config_for_scenario
from ...sim.board_serve import SERVE_SPIN_S, make_pty, serve_fd, serve_port
from ...sim.scenario import load_scenario
from ..board.flashing import load_key
from ..errors import InputError
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch board --pty                                 # prints the device path, e.g. /dev/pts/7
  hullwatch board --pty --flash board.flash             # configuration flash kept in board.flash
  hullwatch board --pty --scenario nominal-24h --baud 115200
  hullwatch board --pty --flash keyed.flash --key board.key   # a board holding an HMAC key
  hullwatch board --device socket://0.0.0.0:7000          # any pyserial URL (the host end connects)

Then, in another terminal:
  hullwatch run --device serial:///dev/pts/7 --scenario soyuz-ms09
  hullwatch board-info --device /dev/pts/7

The flash file is made with the factory configuration of --scenario's station (default
soyuz-ms09) when it does not exist, and survives restarts. With --key the board holds that HMAC
key (a new flash file is provisioned with it and its factory image is tagged): it refuses untagged
images (FLASH_TAG_MISSING) and images tagged with another key (FLASH_TAG_MISMATCH). Ctrl-C stops
the board.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "board",
        help=SUMMARIES["board"],
        description="Run the board emulator: the board side of the wire protocol "
        "(docs/protocol.md), with its configuration flash in a file, calibration, valves with "
        "actuation time and HIL stimulation. Serves until Ctrl-C.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal and print its path")
    where.add_argument("--device", "--port", dest="device", metavar="URL", help="serve on this pyserial port URL (alias: --port)")
    p.add_argument("--flash", metavar="FILE", help="configuration flash file (made if missing; default: in RAM)")
    p.add_argument("--board-id", metavar="ID", default=None, help="board id (default hwb-emu-0001)")
    p.add_argument("--scenario", metavar="NAME", default="soyuz-ms09",
                   help="station whose factory configuration and valve travel times the board "
                   "gets (preset or TOML file; default soyuz-ms09)")
    p.add_argument("--no-hil", action="store_true", help="factory configuration without HIL allowed")
    p.add_argument("--key", metavar="FILE",
                   help="the board holds this HMAC key (format of `hullwatch flash --key`): it "
                   "commits and boots only images tagged with it. A new flash file is "
                   "provisioned with the key; an existing one must hold the same key")
    p.add_argument("--protocol", metavar="1.N", default=None,
                   help="the protocol version the board speaks (default this build's, 1.2; 1.1 has "
                   "no HIL_STEP, 1.0 no HIL valve stimulus either)")
    p.add_argument("--spin-us", type=float, default=SERVE_SPIN_S * 1e6, metavar="US",
                   help="with --pty: after each reply, poll for the next request for US "
                   f"microseconds before sleeping (default {SERVE_SPIN_S * 1e6:g}; 0: sleep at once). "
                   "A fast host's next request then meets a running board, not a sleeping one")
    p.add_argument("--baud", type=int, default=None, metavar="N",
                   help="pace the board's output like a UART at N baud (a pty ignores baud)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if not 0.0 <= args.spin_us <= 1e6:  # NaN fails too
        raise InputError(f"--spin-us: expected 0 .. 1000000 microseconds, got {args.spin_us}")
    if args.baud is not None and args.baud <= 0:
        raise InputError(f"--baud: expected a positive baud rate, got {args.baud}")
    board_id = args.board_id or DEFAULT_BOARD_ID
    scenario = load_scenario(args.scenario)
    config = config_for_scenario(scenario, board_id, hil_allowed=not args.no_hil)
    key = None
    if args.key:
        key = load_key(args.key)
        warning = key_file_exposure(args.key)
        if warning:
            print(f"hullwatch: warning: {warning}", file=sys.stderr)
    try:
        flash = open_flash(args.flash, board_id=board_id, config=config, key=key)
    except EmulatorError as exc:
        raise InputError(str(exc)) from exc
    minor = wire.PROTOCOL_MINOR
    if args.protocol is not None:
        major, _, minor_text = args.protocol.partition(".")
        if major != str(wire.PROTOCOL_MAJOR) or not minor_text.isdigit() or int(minor_text) > wire.PROTOCOL_MINOR:
            raise InputError(f"--protocol {args.protocol}: expected {wire.PROTOCOL_MAJOR}.0 .. "
                             f"{wire.PROTOCOL_MAJOR}.{wire.PROTOCOL_MINOR}")
        minor = int(minor_text)
    board = BoardEmulator(flash, protocol_minor=minor, **hardware_for_scenario(scenario))
    info = flash.info()
    config_text = (f"generation {info.generation} in slot {'AB'[info.active_slot]}"
                   if info.active_slot is not None else "no valid configuration")

    stopping = [False]

    def on_term(signum: int, frame: Any) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.pty:
            master, slave, path = make_pty()
            print(f"hullwatch board: emulated board {board_id} serving on {path}", flush=True)
            print(f"  connect with: hullwatch run --device serial://{path} --scenario {scenario.name}",
                  flush=True)
            print(f"  flash: {args.flash or '(in RAM)'} ({config_text}); Ctrl-C to stop", flush=True)
            serve_fd(board, master, stop=lambda: stopping[0], baud=args.baud, spin_s=args.spin_us * 1e-6)
        else:
            port = open_port(args.device, timeout=0.05)
            print(f"hullwatch board: emulated board {board_id} serving on {args.device}", flush=True)
            print(f"  flash: {args.flash or '(in RAM)'} ({config_text}); Ctrl-C to stop", flush=True)
            serve_port(board, port, stop=lambda: stopping[0], baud=args.baud)
    except KeyboardInterrupt:
        pass
    finally:
        flash.close()
    rx = board.rx_counters()
    kept = f"configuration flash kept in {args.flash}" if args.flash else "the flash was in RAM: nothing kept"
    print(f"hullwatch board: stopped after {board.counters['requests']} requests "
          f"({board.counters['naks']} refused, {rx['crc_errors'] + rx['cobs_errors']} bad frames, "
          f"{rx['dropped_bytes']} bytes dropped); {kept}", file=sys.stderr)
    return 0
