"""``hullwatch flash``: validate a board configuration and flash it, verified and power-fail safe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ...hal.board_link import BoardLink
from ...hal.config_image import decode_image, encode_image, image_crc
from ...hal.config_source import load_config
from ...hal.config_text import summary_lines
from ...hal.errors import ConfigImageError
from ...hal.keyfile import key_file_exposure
from ..board import flashing
from .common import add_device_argument, naming, progress_bar
from ..errors import InputError
from . import SUMMARIES

EXAMPLES = """\
examples:
  hullwatch flash examples/board.toml --dry-run              # validate, print the image summary
  hullwatch flash examples/board.toml --device /dev/ttyACM0
  hullwatch flash board.toml --device emuboard://bench?flash=board.flash
  hullwatch flash board.toml --device /dev/ttyACM0 --key board.key   # HMAC-tagged image
  hullwatch flash other-board.toml --device /dev/ttyACM0 --force      # image built for another id
  hullwatch flash board.toml --device /dev/ttyACM0 --verify read      # read every byte back

The image goes to the board's inactive slot, is verified, and only then committed: a power cut
or a dead link at any point leaves the board on its previous image or the new one, never a
broken one. Format and rules: docs/config-image.md. Exit status 2 for a bad configuration or
key file, 4 when the board refuses or does not answer.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "flash",
        help=SUMMARIES["flash"],
        description="Validate CONFIG (a TOML source, or an image file from --save-image), "
        "identify the board, write the image to its inactive slot in blocks with retries, verify "
        "it, commit it and confirm that the board runs the new generation.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG", help="board configuration: a .toml source or an image file")
    add_device_argument(p, help="the board: a serial port or any pyserial URL (required unless --dry-run; "
                        "alias: --port)")
    p.add_argument("--force", action="store_true",
                   help="flash even if the image is built for another board id")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the image summary; do not touch the board")
    p.add_argument("--key", metavar="FILE", help="HMAC-SHA256 key file: 32-128 hex digits as text, or 16-64 raw bytes "
                   "(docs/config-image.md, \"Key files\"): tag the image")
    p.add_argument("--verify", choices=("crc", "read"), default="crc",
                   help="crc: the board's CRC-32 of each written block (default); read: read every byte back")
    p.add_argument("--save-image", metavar="FILE", help="also write the image bytes to FILE")
    p.set_defaults(func=handler)


def _load(args: argparse.Namespace) -> tuple[Any, bytes | None]:
    """(config, image bytes for an image file / None for a TOML source)."""
    path = Path(args.config)
    if path.suffix.lower() == ".toml":
        return load_config(path), None
    image = path.read_bytes()
    try:
        decoded = decode_image(image)
    except ConfigImageError as exc:
        raise InputError(f"{path}: not a valid configuration image: {exc}") from exc
    if args.key:
        raise InputError(f"{path}: --key tags images built from a TOML source; this image file is "
                         f"{'already tagged' if decoded.tagged else 'untagged'}")
    return decoded.config, image


def _progress_bar() -> tuple[Any, Any]:
    """(callback, closer): a tqdm bar per phase on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return None, lambda: None
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = progress_bar(total=total, unit="B", unit_scale=True, desc=phase, leave=True)
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


def handler(args: argparse.Namespace) -> int:
    config, image = _load(args)
    key = flashing.load_key(args.key) if args.key else None
    if args.key:
        warning = key_file_exposure(args.key)
        if warning:
            print(f"hullwatch: warning: {warning}", file=sys.stderr)
    if args.dry_run:
        if image is None:
            image = encode_image(config.with_generation(1), key=key)
            note = "generation 1 shown; a flash assigns the board's next generation"
        else:
            note = "as stored in the file"
        print(f"{args.config}: valid; image {len(image)} bytes, image CRC {image_crc(image):#010x} "
              f"({note}), HMAC tag {'yes' if key or image[6] & 0x02 else 'no'}")
        for line in summary_lines(decode_image(image).config):
            print(line)
        if args.save_image:
            Path(args.save_image).write_bytes(image)
            print(f"image written to {args.save_image}")
        print("dry run: the board was not touched")
        return 0
    if not args.device:
        raise InputError("--device URL is required (or use --dry-run)")

    with naming("--device"):
        link = BoardLink.open(args.device)
    progress, close_bars = _progress_bar()
    try:
        if image is None:
            result = flashing.flash_config(link, config, key=key, force=args.force,
                                           verify=args.verify, progress=progress)
        else:
            result = flashing.flash_image(link, image, force=args.force, verify=args.verify,
                                          progress=progress)
    finally:
        close_bars()
        link.close()
    if args.save_image:
        Path(args.save_image).write_bytes(encode_image(config.with_generation(result.generation),
                                                       key=key) if image is None else image)
    verified = "read back" if result.verify == "read" else "verified by CRC"
    retries = f", {result.retries} block retries" if result.retries else ""
    print(f"{result.board_id}: flashed generation {result.generation} to slot {result.slot_name} "
          f"({result.size} bytes, image CRC {result.crc32:#010x}), {verified}, committed and "
          f"confirmed in {result.seconds:.2f} s{retries}; previous generation "
          f"{result.previous_generation}")
    return 0


def on_interrupt(args: argparse.Namespace) -> str:
    """Ctrl-C mid-flash: the write goes to the inactive slot and only a confirmed commit switches,
    so the board keeps running the configuration it had (power-fail safe, docs/config-image.md)."""
    if args.dry_run or not args.device:
        return "nothing written"
    return (f"the board at {args.device} keeps its previous configuration unless the commit was "
            "confirmed (check with hullwatch board-info); flash again to finish")
