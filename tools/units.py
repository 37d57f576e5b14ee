"""The one set of display units every tool prints: SI values in, short text out.

Pressure in kPa with mmHg beside it, leak rates in kg/day, reserve and other long durations in
hours and minutes, hole diameters in mm, volumes in m3. Telemetry, captures and the event values
stay SI (Pa, kg/s, s, m); only what people read goes through here.
"""

from __future__ import annotations

import math

#: Pa per mmHg (the conventional millimetre of mercury).
MMHG_PA = 133.322387415
#: seconds per day
DAY_S = 86400.0
#: molar mass of cabin air, kg/mol (turns a gas inventory in mol into kg)
AIR_KG_MOL = 0.0289647


def kpa_mmhg(pa: float) -> str:
    """``101.3 kPa (760 mmHg)``."""
    return f"{pa / 1000.0:.1f} kPa ({pa / MMHG_PA:.0f} mmHg)"


def pressure_rate(pa_s: float) -> str:
    """A pressure rate: ``-0.52 kPa/min (-3.9 mmHg/min)``."""
    per_min = pa_s * 60.0
    return f"{per_min / 1000.0:.3g} kPa/min ({per_min / MMHG_PA:.3g} mmHg/min)"


def kg_day(kg_s: float) -> str:
    """A leak (gas loss) rate: ``16.5 kg/day``; three significant figures, no exponent
    (``6,900 kg/day``)."""
    v = kg_s * DAY_S
    return f"{v:,.0f} kg/day" if abs(v) >= 1000 else f"{v:.3g} kg/day"


def hours_minutes(seconds: float) -> str:
    """A duration in hours and minutes: ``2 h 54 min``, ``6 min``; ``1 min 40 s`` under ten
    minutes, ``45 s`` under one; ``102 h 53 min`` for long ones; ``n/a`` for infinity or NaN."""
    if not math.isfinite(seconds):
        return "n/a"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s:.0f} s"
    if s < 600:
        m, sec = divmod(int(round(s)), 60)
        return f"{sign}{m} min {sec} s" if sec else f"{sign}{m} min"
    minutes = int(round(s / 60.0))
    h, m = divmod(minutes, 60)
    if h == 0:
        return f"{sign}{m} min"
    return f"{sign}{h} h {m:02d} min" if m else f"{sign}{h} h"


def millimetres(metres: float) -> str:
    """``1.40 mm``."""
    return f"{metres * 1000.0:.2f} mm"


def equivalent_diameter(diameter_m: float, cd: float, at_cd: float) -> float:
    """The hole diameter (m) that leaks as much at discharge coefficient ``at_cd`` as
    ``diameter_m`` does at ``cd`` (orifice flow scales with Cd times area, so with Cd d^2)."""
    if at_cd <= 0 or cd <= 0:
        return diameter_m
    return diameter_m * math.sqrt(cd / at_cd)


def plural(n: float, one: str, many: str | None = None) -> str:
    """``1 module``, ``0 modules``, ``3 hatches`` (give ``many`` when it is not ``one + 's'``)."""
    count = int(round(n))
    return f"{count} {one if count == 1 else (many or one + 's')}"


def size_text(nbytes: int) -> str:
    """A file size: ``812 B``, ``4.2 kB``, ``29.3 MB``, ``1.24 GB`` (decimal units)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}" if nbytes < 100 * scale else f"{nbytes / scale:.0f} {unit}"
    return f"{nbytes} B"


def field_label(field_name: str, unit: str) -> str:
    """``leak_rate_kg_s`` -> ``leak_rate`` (the unit is shown with the value)."""
    suffix = "_" + unit.replace("/", "_").replace("^3", "3") if unit else ""
    return field_name[: -len(suffix)] if suffix and field_name.endswith(suffix) else field_name


def value_text(field_name: str, unit: str, value: float, precise: bool = False) -> str:
    """One event value in display units (:mod:`hullwatch.tools.units`): kg/s as kg/day, Pa as
    kPa and mmHg, Pa/s per minute, m as mm, a reserve time in h and min, m^3 as m3. ``precise``
    gives the SI value to 6 significant figures with its unit instead."""
    if precise or not unit:
        return f"{value:.6g}{' ' + unit if unit else ''}"
    if unit == "kg/s":
        return kg_day(value)
    if unit == "Pa":
        return kpa_mmhg(value)
    if unit == "Pa/s":
        return pressure_rate(value)
    if unit == "m":
        return millimetres(value)
    if unit == "m^3":
        return f"{value:.1f} m3"
    if unit == "s":
        return hours_minutes(value) if value >= 60 else f"{value:.3g} s"
    return f"{value:.6g} {unit}"


def subject_text(subject: str, module_names: list[str] | None) -> str:
    """An event subject as people read it: a segment subject (``seg:0x6``, a module name) as its
    module names joined by ``+`` (``soyuz-om+rassvet``), given the layout's module names in layout
    order; ``station`` (the whole station) and any other subject (a sensor, a valve) as they are."""
    if subject == "station":
        return subject
    if not module_names:
        return subject
    # deferred: importing firmware.fdir loads the whole FDIR (0.2 s); the other units do without
    from ..firmware.fdir.topology import segment_modules

    mods = segment_modules(subject, module_names)
    if mods is None:
        return subject
    return "+".join(mods)
