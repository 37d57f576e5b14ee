"""Hardware abstraction: device interfaces, device URLs, board wire protocol, serial backend.

``hullwatch.hal.open(url)`` returns a :class:`Device`, like pyserial's ``serial_for_url``::

    dev = hal.open("sim://soyuz-ms09?seed=7")
    dev = hal.open("/dev/ttyACM0")
    dev = hal.open("spy:///dev/ttyACM0")

hal imports nothing else of hullwatch; other backends register their URL schemes as entry points
(group ``hullwatch.devices``, see :mod:`hullwatch.hal.registry`).
"""

from .clock import Clock, VirtualClock, WallClock
from .errors import (
    ConfigImageError,
    DeviceNotFound,
    DeviceOpenError,
    DevicePermissionError,
    DeviceUrlError,
    HalError,
    LinkError,
    LinkTimeout,
    NakError,
    ProtocolError,
    UnknownSchemeError,
)
from .interfaces import (
    ChannelInfo,
    ChannelKind,
    Device,
    DeviceInfo,
    Frame,
    Layout,
    ModuleInfo,
    SampleStatus,
    ValveInfo,
    ValveKind,
)
from .registry import open_device as open

__all__ = [
    "open", "Clock", "VirtualClock", "WallClock",
    "ChannelInfo", "ChannelKind", "Device", "DeviceInfo", "Frame", "Layout", "ModuleInfo",
    "SampleStatus", "ValveInfo", "ValveKind",
    "HalError", "UnknownSchemeError", "DeviceUrlError", "DeviceOpenError", "DeviceNotFound",
    "DevicePermissionError", "LinkError", "LinkTimeout", "ProtocolError", "NakError",
    "ConfigImageError",
]
