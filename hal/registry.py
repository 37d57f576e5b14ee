"""Device backends by URL scheme, found through entry points.

python-can's ``can.interface`` entry-point group is the model. hal knows one backend of its own,
the serial board (``serial://``, bare port paths, and every pyserial URL); every other scheme is
registered by the package that provides it, in its ``pyproject.toml``, for example::

    [project.entry-points."hullwatch.devices"]
    mybench = "mybench.device:open_url"      # scheme -> a callable open(url, **options) -> Device

    [project.entry-points."hullwatch.serial_handlers"]
    mylink = "mybench.urlhandler.protocol_mylink"   # scheme -> a pyserial URL handler module

hullwatch's own pyproject.toml registers the plant simulation (``sim``) and the capture replay
(``replay``) as devices and the board emulator (``emuboard``) as a serial handler; a third-party
package adds a scheme the same way, and ``hal.open("mybench://...")`` and ``hullwatch run --device
mybench://...`` take it once the package is installed. hal names no module of the layers above, and a backend is imported only when its scheme is
opened.

A ``hullwatch.serial_handlers`` entry must name a module called ``protocol_<scheme>`` (pyserial's
rule: it imports ``<package>.protocol_<scheme>`` for ``<scheme>://``); the serial backend opens
those URLs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any, Callable
from urllib.parse import urlsplit

import serial

from .errors import DeviceOpenError, DeviceUrlError, UnknownSchemeError
from .interfaces import Device

#: entry-point group of device backends: name = URL scheme, value = ``module:callable``
DEVICES_GROUP = "hullwatch.devices"
#: entry-point group of pyserial URL handlers: name = URL scheme, value = ``package.protocol_<scheme>``
SERIAL_HANDLERS_GROUP = "hullwatch.serial_handlers"

#: hal's own backend, for ``serial://``, bare port paths and pyserial URLs
SERIAL_BACKEND = "hullwatch.hal.serial_device:open_url"

_PYSERIAL_SCHEMES = ("loop", "socket", "spy", "hwgrep", "rfc2217", "alt", "cp2110")


def _entry_points(group: str) -> dict[str, str]:
    """scheme -> entry-point value of ``group`` over the installed distributions (looked up on each
    call: opening a device is rare, and a package installed meanwhile is seen).

    Raises:
        UnknownSchemeError: two distributions register the same scheme to different targets.
    """
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=group):
        scheme = ep.name.lower()
        if scheme in found and found[scheme] != ep.value:
            raise UnknownSchemeError(f"URL scheme {scheme!r} is registered twice in the {group!r} entry points: "
                                     f"{found[scheme]!r} and {ep.value!r}; uninstall one of the packages")
        found[scheme] = ep.value
    return found


def device_backends() -> dict[str, str]:
    """scheme -> ``module:callable`` of every registered device backend (``serial`` included)."""
    return {"serial": SERIAL_BACKEND, **_entry_points(DEVICES_GROUP)}


def serial_handlers() -> dict[str, str]:
    """scheme -> pyserial handler module of every registered handler.

    Raises:
        UnknownSchemeError: an entry names a module not called ``protocol_<scheme>``.
    """
    handlers = _entry_points(SERIAL_HANDLERS_GROUP)
    for scheme, module in handlers.items():
        if module.rpartition(".")[2] != f"protocol_{scheme}" or "." not in module:
            raise UnknownSchemeError(f"{SERIAL_HANDLERS_GROUP!r} entry point {scheme!r} = {module!r}: expected "
                                     f"a module 'PACKAGE.protocol_{scheme}' (pyserial's naming rule)")
    return handlers


def install_serial_handlers() -> None:
    """Let pyserial's ``serial_for_url`` find the registered URL handlers (idempotent; imports
    none of the handlers)."""
    for module in serial_handlers().values():
        package = module.rpartition(".")[0]
        if package not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(package)


def is_serial_scheme(scheme: str) -> bool:
    """True when pyserial (with the registered handlers) can open ``scheme://`` URLs."""
    if scheme in _PYSERIAL_SCHEMES or scheme in serial_handlers():
        return True
    try:
        return importlib.util.find_spec(f"serial.urlhandler.protocol_{scheme}") is not None
    except (ImportError, ValueError):  # pyserial missing, or a scheme that is no module name
        return False


def known_schemes() -> list[str]:
    """Every scheme :func:`open_device` takes."""
    return sorted(set(device_backends()) | set(_PYSERIAL_SCHEMES) | set(serial_handlers()))


def resolve(target: str, scheme: str = "") -> Callable[..., Device]:
    """The callable named by ``target`` (``module:attr``).

    Raises:
        DeviceOpenError: the module cannot be imported or has no such attribute.
    """
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise DeviceOpenError(f"the backend of {scheme or '?'}:// ({target}) cannot be loaded: {exc}") from exc


def open_device(url: str, **options: Any) -> Device:
    """Open the device named by ``url``.

    ``sim://NAME-or-PATH?seed=N`` (plant simulation), ``replay://CAPTURE`` (a telemetry capture),
    ``serial:///dev/ttyACM0``, a bare path such as ``/dev/ttyACM0``, or any pyserial URL
    (``loop://``, ``socket://``, ``spy://``, ``hwgrep://``, ``emuboard://``...) for the USB board;
    and any scheme a package registers (module docstring).

    Raises:
        UnknownSchemeError: no backend for the scheme; the message lists the known ones.
        DeviceUrlError: the URL is malformed.
        DeviceOpenError: the backend could not be loaded or could not open it (with a hint where
            one helps).
    """
    if not url:
        raise DeviceUrlError("empty device URL")
    if "://" not in url:
        # A bare path or port name ("/dev/ttyACM0", "COM3") is a serial port.
        return resolve(SERIAL_BACKEND, "serial")(url, **options)
    scheme = urlsplit(url).scheme.lower()
    backends = device_backends()
    if scheme in backends:
        return resolve(backends[scheme], scheme)(url, **options)
    install_serial_handlers()
    if is_serial_scheme(scheme):
        return resolve(SERIAL_BACKEND, "serial")(url, **options)
    raise UnknownSchemeError(
        f"unknown device URL scheme {scheme!r} in {url!r}; known schemes: "
        + ", ".join(f"{s}://" for s in known_schemes())
        + ", or a bare serial port path"
    )
