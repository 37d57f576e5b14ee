"""Gas laws for cabin air: ideal gas, orifice flow (choked and subsonic), analytic blowdown.

Air is one ideal gas with gamma 1.4 and R 287.05 J/(kg K) (docs/architecture.md, "Defaults drawn from the
record"). Units: Pa, K, kg, kg/s, m, m^2, m^3, s.
"""

from __future__ import annotations

import math

GAMMA = 1.4
R_AIR = 287.05  # J/(kg K)
MMHG_PA = 133.322387415  # Pa per mmHg

#: Downstream/upstream pressure ratio below which an orifice is choked (0.528 for gamma 1.4).
CRITICAL_RATIO = (2.0 / (GAMMA + 1.0)) ** (GAMMA / (GAMMA - 1.0))

#: Choked mass flux per unit effective area, per Pa upstream, times sqrt(K):
#: mdot = Cd * A * P_up * CHOKED_FLUX / sqrt(T_up).
CHOKED_FLUX = math.sqrt(GAMMA / R_AIR) * (2.0 / (GAMMA + 1.0)) ** ((GAMMA + 1.0) / (2.0 * (GAMMA - 1.0)))

_SUBSONIC = 2.0 * GAMMA / ((GAMMA - 1.0) * R_AIR)
_EXP1 = 2.0 / GAMMA
_EXP2 = (GAMMA + 1.0) / GAMMA


def area(diameter_m: float) -> float:
    """Area of a round hole, m^2."""
    return math.pi * 0.25 * diameter_m * diameter_m


def orifice_flow(cda: float, p_up: float, t_up: float, p_down: float) -> float:
    """Mass flow (kg/s, >= 0) through an orifice of effective area ``cda`` = Cd*A (m^2) from
    ``p_up`` (Pa, gas at ``t_up`` K) to ``p_down`` (Pa); choked below the critical ratio.
    Returns 0 when ``p_down >= p_up``."""
    if p_up <= p_down or p_up <= 0.0:
        return 0.0
    r = p_down / p_up
    if r <= CRITICAL_RATIO:
        return cda * p_up * CHOKED_FLUX / math.sqrt(t_up)
    return cda * p_up * math.sqrt(_SUBSONIC / t_up * (r ** _EXP1 - r ** _EXP2))


def choked_flow(cd: float, diameter_m: float, p_up: float, t_up: float) -> float:
    """Mass flow (kg/s) of a hole to vacuum: always choked."""
    return cd * area(diameter_m) * p_up * CHOKED_FLUX / math.sqrt(t_up)


def blowdown_pressure(p0: float, t: float, volume_m3: float, cd: float, diameter_m: float,
                      temperature_k: float) -> float:
    """Analytic pressure (Pa) at time ``t`` (s) of an isothermal volume leaking to vacuum through
    a choked hole: P = P0 exp(-t / tau), tau = V / (Cd A CHOKED_FLUX sqrt(T) R)."""
    tau = volume_m3 / (cd * area(diameter_m) * CHOKED_FLUX * R_AIR * math.sqrt(temperature_k))
    return p0 * math.exp(-t / tau)


def hole_diameter(mass_flow: float, cd: float, p_up: float, t_up: float) -> float:
    """Hole diameter (m) that leaks ``mass_flow`` kg/s to vacuum at ``p_up``, ``t_up``."""
    a = mass_flow * math.sqrt(t_up) / (cd * p_up * CHOKED_FLUX)
    return math.sqrt(4.0 * a / math.pi)


def pressure_rate(mass_flow: float, volume_m3: float, temperature_k: float) -> float:
    """dP/dt (Pa/s) of a volume gaining ``mass_flow`` kg/s at constant temperature."""
    return mass_flow * R_AIR * temperature_k / volume_m3
