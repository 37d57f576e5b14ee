"""HMAC key files: the strict format of docs/config-image.md ("Key files"), shared by
``hullwatch flash --key``, ``hullwatch board --key`` and the ``emuboard://?key=FILE`` option.

A text file holds the key in hex (32..128 hex digits, whitespace ignored); anything else is the
raw key (16..64 bytes). A text file that is almost hex is refused with the offending byte offset
rather than used as raw bytes, so a typo cannot silently become another key.
"""

from __future__ import annotations

from pathlib import Path

from .config_model import MAX_KEY_SIZE, MIN_KEY_SIZE
from .errors import ConfigImageError

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def parse_key(data: bytes, source: str = "key") -> bytes:
    """The HMAC key held in a key file's bytes (docs/config-image.md, "Key files").

    The format is strict, so a typo cannot silently become another key:

    * a file that is text (only printable ASCII and whitespace) is a **hex key**: hex digits
      only (either case; whitespace between them is ignored), an even count of 32 .. 128 digits
      (16 .. 64 bytes). Any other character is refused with its byte offset;
    * anything else is a **raw key**: the file's bytes exactly, 16 .. 64 of them.

    Raises:
        ConfigImageError: naming ``source`` and what was wrong.
    """
    lo, hi = MIN_KEY_SIZE, MAX_KEY_SIZE
    if data and all(32 <= b < 127 or b in b" \t\r\n" for b in data):
        digits = bytearray()
        for offset, b in enumerate(data):
            if b in b" \t\r\n":
                continue
            if b not in _HEX_DIGITS:
                raise ConfigImageError(
                    f"{source}: a text key file holds the key in hex, but byte offset {offset} is "
                    f"{chr(b)!r}, not a hex digit (0-9, a-f); a raw key file holds binary bytes")
            digits.append(b)
        if len(digits) % 2 or not 2 * lo <= len(digits) <= 2 * hi:
            raise ConfigImageError(f"{source}: a hex key of {len(digits)} digits; expected an even "
                                   f"count of {2 * lo} .. {2 * hi} hex digits ({lo} .. {hi} bytes), "
                                   "e.g. `openssl rand -hex 32 > board.key`")
        return bytes.fromhex(digits.decode("ascii"))
    if not lo <= len(data) <= hi:
        raise ConfigImageError(f"{source}: a raw key of {len(data)} bytes; expected {lo} .. {hi} "
                               "bytes (or the key in hex as text)")
    return bytes(data)


def key_file_exposure(path: str | Path) -> str | None:
    """A warning when the key file at ``path`` is readable by its group or by others (an HMAC
    key is a secret: ``chmod 600``), else None. Never raises."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & 0o044:
        who = " and ".join(w for w, bit in (("its group", 0o040), ("everyone", 0o004)) if mode & bit)
        return f"{path}: the key file is readable by {who} (mode {mode & 0o777:03o}); chmod 600 it"
    return None


def read_key_file(path: str | Path) -> bytes:
    """Read and parse a key file (:func:`parse_key`). Raises ConfigImageError naming the file,
    FileNotFoundError/PermissionError when it cannot be read."""
    return parse_key(Path(path).read_bytes(), str(path))
