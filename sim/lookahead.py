"""Lookahead tables of the plant's open-loop terms: what depends on mission time alone.

The gas temperature of each module (orbital sine plus slow drift), the capacity V / (R T) that
follows from it, and the crew's activity and oxygen-generation factors are functions of time:
valves, leaks and FDIR do not change them. In the lockstep loop the plant steps on a fixed grid
(``t = k * period``, the executive's deadlines), so :class:`TimeTable` computes these terms with
numpy for the next :data:`BLOCK` grid times at once and hands them out one row per step: about
2k CPU instructions per step instead of about 20k for the scalar formulas.

Exactness: every row is computed by the same IEEE operations, in the same order, as the scalar
formulas in :meth:`Plant._time_terms` (numpy ufuncs are one correctly rounded operation each;
no fused multiply-add), and numpy's float64 ``sin``/``cos`` call the C library's (tests check
both, and that stepping with and without tables gives bit-identical plants). As a guard, a
table is used only if its first row equals the scalar formulas' result; tables stop for good
once one does not. Where numpy's sin differed in the last bit for some argument only, runs would
stay deterministic (same grid, same rows) but differ from a table-less run in the last bit.

A step off the grid (a paced wall clock, a long advance split into substeps) uses the scalar
path; a step on the grid that the table does not hold starts a new table.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: grid steps per table (one numpy evaluation per BLOCK steps)
BLOCK = 1024
#: after a step off the grid, this many further scalar steps before the grid is looked for again
_BACKOFF = 63
_TWO_PI = 2.0 * math.pi
_DAY_S = 86400.0


class TimeTable:
    """Rows ``(temperature list, capacity list, activity factor, generation rate)`` for grid
    times ``k * period``.

    Args:
        thermal_rows: per module ``(mean, a, b, c, d)``: T = mean + a sin(wo t) + b cos(wo t)
            + c sin(wd t) + d cos(wd t).
        w_orbit, w_drift: rad/s.
        vol_r: per module V / R (m^3 kg K / J); capacity = vol_r / T.
        crew: ``(act_amp, act_phase, use_mean, mis_amp, mis_w, mis_phase)``, or None without crew:
            activity = 1 + act_amp sin(2 pi t / day + act_phase), generation = use_mean +
            mis_amp sin(mis_w t + mis_phase).
        scalar: the scalar formulas, ``scalar(t) -> row``, to check each new table against.
    """

    def __init__(self, thermal_rows: list[tuple[float, float, float, float, float]], w_orbit: float,
                 w_drift: float, vol_r: list[float],
                 crew: tuple[float, float, float, float, float, float] | None,
                 scalar: Callable[[float], tuple[list[float], list[float], float, float]]) -> None:
        cols = np.asarray(thermal_rows, dtype=float).reshape(-1, 5)
        self._mean, self._a, self._b, self._c, self._d = (cols[:, i] for i in range(5))
        self._wo = w_orbit
        self._wd = w_drift
        self._vol_r = np.asarray(vol_r, dtype=float)
        self._crew = crew
        self._scalar = scalar
        self.n = len(vol_r)
        self.period = 0.0  #: grid period of the current table (0: none)
        self.enabled = True  #: False once a table disagreed with the scalar formulas
        self.tables = 0  #: tables built
        self._times: list[float] = []
        self._next = 0
        self._backoff = 0  #: scalar steps left before the grid is looked for again
        self._temp: list[list[float]] = []  #: per row, per module (K)
        self._cap: list[list[float]] = []  #: per row, per module (kg/Pa)
        self._use: list[float] = []
        self._gen: list[float] = []
        self._cap_array = np.zeros((0, self.n))
        self._node_key: tuple[int, ...] | None = None  #: the grouping _node_rows was made for
        self._node_rows: list[list[float]] = []

    def row(self, t: float) -> tuple[list[float], list[float], float, float] | None:
        """The terms at ``t`` if the table holds ``t`` as its next row, else None."""
        i = self._next
        if i < len(self._times) and self._times[i] == t:
            self._next = i + 1
            # (Rows are handed out once each; the plant replaces its lists, never writes them.)
            return (self._temp[i], self._cap[i],
                    self._use[i] if self._use else 0.0, self._gen[i] if self._gen else 0.0)
        return None

    def node_capacities(self, node_of: tuple[int, ...], n_nodes: int) -> list[float]:
        """For the row :meth:`row` handed out last: the summed capacity (kg/Pa) of each pressure
        node, module ``i`` being in node ``node_of[i]``; each sum taken in module order, as
        ``ns[node_of[i]] += cap[i]`` would (the same IEEE additions). Tabulated for the whole
        table once per grouping: a new grouping must come as a new tuple object."""
        if node_of is not self._node_key:
            sums = np.zeros((len(self._times), n_nodes))
            for i, k in enumerate(node_of):
                sums[:, k] = sums[:, k] + self._cap_array[:, i]
            self._node_rows = sums.tolist()
            self._node_key = node_of
        return self._node_rows[self._next - 1]

    def missed(self, t: float, span: float) -> None:
        """The step to ``t`` (after a step of ``span`` s) used the scalar path: if ``t`` lies
        on the grid of ``span`` (rounded to a whole ns), tabulate the next BLOCK grid times."""
        if self._backoff:  # off the grid lately: look again only now and then
            self._backoff -= 1
            return
        if not self.enabled or not 1e-6 < span < 1e6:
            return
        period = round(span * 1e9) / 1e9  # the executive's period: a whole number of ns
        k = round(t / period)
        if k * period != t:  # off the grid: a paced clock or substeps
            self._backoff = _BACKOFF
            return
        self._build(k + 1, period)

    def temperatures(self, times: np.ndarray) -> np.ndarray | None:
        """Gas temperature (K) of each module at each of ``times`` (rows), by the scalar
        formula's operations; None once numpy has disagreed with the C library here."""
        if not self.enabled:
            return None
        wo = self._wo * times
        wd = self._wd * times
        so, co, sd, cd = np.sin(wo), np.cos(wo), np.sin(wd), np.cos(wd)
        # (((mean + a so) + b co) + c sd) + d cd, per module and time: the scalar order
        return (self._mean[None, :] + self._a[None, :] * so[:, None] + self._b[None, :] * co[:, None]
                + self._c[None, :] * sd[:, None] + self._d[None, :] * cd[:, None])

    def _build(self, k0: int, period: float) -> None:
        times = np.arange(k0, k0 + BLOCK, dtype=float) * period  # k * period, as the executive
        temp = self.temperatures(times)
        assert temp is not None
        cap = self._vol_r[None, :] / temp
        if self._crew is not None:
            act_amp, act_phase, use_mean, mis_amp, mis_w, mis_phase = self._crew
            use = (1.0 + act_amp * np.sin(_TWO_PI * times / _DAY_S + act_phase)).tolist()
            gen = (use_mean + mis_amp * np.sin(mis_w * times + mis_phase)).tolist()
        else:
            use, gen = [], []
        t_list = times.tolist()
        first = (temp[0].tolist(), cap[0].tolist(), use[0] if use else 0.0, gen[0] if gen else 0.0)
        if first != self._scalar(t_list[0]):
            self.enabled = False  # numpy disagrees with the C library here: stay scalar
            self._times = []
            return
        self._times = t_list
        self._next = 0
        # Lists of row lists (converted once per table): a row is one index away per step.
        self._temp = temp.tolist()
        self._cap = cap.tolist()
        self._cap_array = cap
        self._node_key = None
        self._use = use
        self._gen = gen
        self.period = period
        self.tables += 1
