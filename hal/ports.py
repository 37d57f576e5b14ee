"""Opening a serial port by URL, with a hint when it fails.

``open_port(url)`` accepts what ``hal.open`` does for the board: ``serial:///dev/ttyACM0`` (the
``serial://`` prefix is ours and is stripped), a bare path or port name (``/dev/ttyACM0``,
``COM3``), or any pyserial URL (``loop://``, ``socket://host:port``, ``spy:///dev/ttyACM0``,
``hwgrep://VID:PID``, ``rfc2217://``) including our ``emuboard://`` handler. esptool's
``FatalError`` hints are the model: a missing device and a permission problem are the two
failures users hit first, so each gets a sentence saying what to do.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import serial

from .errors import DeviceNotFound, DeviceOpenError, DevicePermissionError, DeviceUrlError
from .registry import install_serial_handlers

#: The host opens every port at this rate; USB CDC ignores it, a real UART board needs it.
DEFAULT_BAUD = 115200

HINT_NOT_FOUND = (
    "is the board plugged in? List serial ports with `python -m serial.tools.list_ports -v`; "
    "a USB CDC board is usually /dev/ttyACM0 on Linux, /dev/cu.usbmodem* on macOS, COMn on Windows"
)
HINT_PERMISSION = (
    "add your user to the dialout group (`sudo usermod -aG dialout $USER`, then log out and in "
    "again), or to uucp on Arch and Fedora"
    if sys.platform.startswith("linux")
    else "check that your user may open the port"
)
HINT_BUSY = "another program holds the port (a terminal, ModemManager, another hullwatch); close it"
HINT_NOT_SERIAL = "the path exists but is not a serial port; give the board's tty (e.g. /dev/ttyACM0)"


def port_url(url: str) -> str:
    """The pyserial URL or path for a device URL (strips our ``serial://`` scheme)."""
    if url.lower().startswith("serial://"):
        rest = url[len("serial://"):]
        if not rest:
            raise DeviceUrlError(f"{url!r}: expected serial:///dev/ttyACM0 or serial://COM3")
        return rest
    return url


def open_port(url: str, *, baudrate: int = DEFAULT_BAUD, timeout: float | None = 0.05, **options: Any) -> Any:
    """Open the serial port named by ``url`` and return the pyserial port object.

    Raises:
        DeviceNotFound: the port does not exist (hint: is it plugged in, how to list ports).
        DevicePermissionError: this user may not open it (hint: the dialout group).
        DeviceOpenError: any other failure (busy, not a serial port, bad URL option), with a
            hint where one helps; the pyserial error is chained.
    """
    install_serial_handlers()
    target = port_url(url)
    try:
        return serial.serial_for_url(target, baudrate=baudrate, timeout=timeout, write_timeout=1.0, **options)
    except serial.SerialException as exc:
        raise classify_open_error(url, exc) from exc
    except OSError as exc:
        raise classify_open_error(url, exc) from exc
    except ValueError as exc:
        raise DeviceUrlError(f"{url}: {exc}") from exc


def classify_open_error(url: str, exc: BaseException) -> DeviceOpenError:
    """The hal error (with hint) for an exception raised while opening ``url``."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if code is None and isinstance(cause, OSError):
        code = cause.errno
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text or "not found" in text.lower():
        return DeviceNotFound(f"{url}: no such serial port", HINT_NOT_FOUND)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return DevicePermissionError(f"{url}: permission denied", HINT_PERMISSION)
    if code == errno.EBUSY or "busy" in text.lower():
        return DeviceOpenError(f"{url}: port busy", HINT_BUSY)
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return DeviceOpenError(f"{url}: not a serial port", HINT_NOT_SERIAL)
    return DeviceOpenError(f"{url}: cannot open: {text}")
