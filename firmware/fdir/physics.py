"""Gas physics FDIR reports with: equivalent hole diameter and reserve time.

Choked flow of air through a hole to vacuum (the cabin is far above twice vacuum, so the flow is
always choked)::

    m' = Cd A P sqrt(gamma / (R T)) (2 / (gamma + 1))^((gamma + 1) / (2 (gamma - 1)))

Only ``Cd * A`` is observable from the mass loss, so the diameter is the *equivalent* one at the
discharge coefficient given (docs/fdir.md explains MS-09's Cd of about 0.35).
"""

from __future__ import annotations

import math


def choked_mass_flux_factor(gamma: float) -> float:
    """(2/(gamma+1))^((gamma+1)/(2(gamma-1))) * sqrt(gamma): choked flow is
    ``Cd A P factor / sqrt(R T)`` kg/s."""
    return math.sqrt(gamma) * (2.0 / (gamma + 1.0)) ** ((gamma + 1.0) / (2.0 * (gamma - 1.0)))


def hole_diameter_m(rate_kg_s: float, pressure_pa: float, temperature_k: float, cd: float,
                    gamma: float, r_gas: float) -> float:
    """Equivalent hole diameter (m) that loses ``rate_kg_s`` to vacuum by choked flow at
    discharge coefficient ``cd``. 0.0 for a non-positive rate."""
    if rate_kg_s <= 0.0 or pressure_pa <= 0.0:
        return 0.0
    area = rate_kg_s * math.sqrt(r_gas * temperature_k) / (cd * pressure_pa * choked_mass_flux_factor(gamma))
    return math.sqrt(4.0 * area / math.pi)


def reserve_time_s(pressure_pa: float, dpdt_pa_s: float, floor_pa: float) -> float:
    """Time (s) for a segment falling at ``dpdt_pa_s`` (negative) to reach ``floor_pa``.

    Choked flow is proportional to pressure, so the fall is exponential with time constant
    ``P / |dP/dt|``: t = P/|dP/dt| * ln(P/P_floor). 0 when already below the floor; inf when not
    falling."""
    if pressure_pa <= floor_pa:
        return 0.0
    if dpdt_pa_s >= 0.0:
        return math.inf
    return pressure_pa / -dpdt_pa_s * math.log(pressure_pa / floor_pa)
