"""Backends by URL scheme, as import strings resolved on first use.

python-can's ``can/interfaces/__init__.py`` is the model: hal names backends that live in
other layers (the plant simulation in ``hullwatch.sim``, the capture replayer in
``hullwatch.tools``) only as strings, so importing hal imports none of them and the layers
stay acyclic.

Every backend entry point is a callable ``open(url: str, **options) -> Device``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable
from urllib.parse import urlsplit

from .errors import DeviceUrlError, UnknownSchemeError
from .interfaces import Device

#: scheme -> "module:callable"
BACKENDS: dict[str, str] = {
    "sim": "hullwatch.sim.device:open_url",
    "replay": "hullwatch.tools.captures.replay_device:open_url",
    "serial": "hullwatch.hal.serial_device:open_url",
}

#: Packages that hold pyserial URL handlers of ours (pyserial imports
#: ``<package>.protocol_<scheme>``). The board emulator lives here.
SERIAL_HANDLER_PACKAGES: tuple[str, ...] = ("hullwatch.sim.urlhandler",)

_PYSERIAL_SCHEMES = ("loop", "socket", "spy", "hwgrep", "rfc2217", "alt", "cp2110")


def install_serial_handlers() -> None:
    """Let pyserial's ``serial_for_url`` find our URL handlers (idempotent, imports nothing)."""
    import serial

    for pkg in SERIAL_HANDLER_PACKAGES:
        if pkg not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(pkg)


def is_serial_scheme(scheme: str) -> bool:
    """True when pyserial (with our handler packages) can open ``scheme://`` URLs."""
    if scheme in _PYSERIAL_SCHEMES:
        return True
    for pkg in ("serial.urlhandler",) + SERIAL_HANDLER_PACKAGES:
        try:
            if importlib.util.find_spec(f"{pkg}.protocol_{scheme}") is not None:
                return True
        except ModuleNotFoundError:
            continue
    return False


def known_schemes() -> list[str]:
    names = set(BACKENDS) | set(_PYSERIAL_SCHEMES)
    for pkg in SERIAL_HANDLER_PACKAGES:
        try:
            spec = importlib.util.find_spec(pkg)
        except ModuleNotFoundError:
            continue
        if spec and spec.submodule_search_locations:
            import pkgutil

            for mod in pkgutil.iter_modules(spec.submodule_search_locations):
                if mod.name.startswith("protocol_"):
                    names.add(mod.name[len("protocol_"):])
    return sorted(names)


def resolve(target: str) -> Callable[..., Device]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def open_device(url: str, **options: Any) -> Device:
    """Open the device named by ``url``.

    ``sim://NAME-or-PATH?seed=N`` (plant simulation), ``replay://CAPTURE`` (a telemetry capture),
    ``serial:///dev/ttyACM0``, a bare path such as ``/dev/ttyACM0``, or any pyserial URL
    (``loop://``, ``socket://``, ``spy://``, ``hwgrep://``, ``emuboard://``...) for the USB board.

    Raises:
        UnknownSchemeError: no backend for the scheme; the message lists the known ones.
        DeviceUrlError: the URL is malformed.
        DeviceOpenError: the backend could not open it (with a hint where one helps).
    """
    if not url:
        raise DeviceUrlError("empty device URL")
    if "://" not in url:
        # A bare path or port name ("/dev/ttyACM0", "COM3") is a serial port.
        return resolve(BACKENDS["serial"])(url, **options)
    scheme = urlsplit(url).scheme.lower()
    if scheme in BACKENDS:
        return resolve(BACKENDS[scheme])(url, **options)
    install_serial_handlers()
    if is_serial_scheme(scheme):
        return resolve(BACKENDS["serial"])(url, **options)
    raise UnknownSchemeError(
        f"unknown device URL scheme {scheme!r} in {url!r}; known schemes: "
        + ", ".join(f"{s}://" for s in known_schemes())
        + ", or a bare serial port path"
    )
