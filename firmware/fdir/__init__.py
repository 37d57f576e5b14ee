"""Fault detection, isolation and recovery (docs/fdir.md).

- params.py: the parameter table (frozen dataclasses from TOML over ``defaults.toml``, validated).
- sensors.py, leak.py + slope.py, isolation.py, valves.py: the four stages, in cycle order.
- topology.py: connected segments from valve feedback.
- machines.py: the state machines' enumerated states and transition tables.
- events.py: the bounded event queue.
- core.py: :class:`Fdir`, the application the flight software steps each cycle.
"""

from .core import Fdir, hole_diameter_m, reserve_time_s
from .leak import statistical_floor_s, thresholds
from .params import FdirParams, default_params, load_params, params_from_dict

__all__ = ["Fdir", "FdirParams", "default_params", "load_params", "params_from_dict", "hole_diameter_m",
           "reserve_time_s", "statistical_floor_s", "thresholds"]
