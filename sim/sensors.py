"""Sensor models: pressure, temperature and repress flow channels, with injectable faults.

Each channel reads its module's true value (pressure, gas temperature, repress mass flow) plus:

* a unit bias drawn once per sensor (uniform in +-bias), and for pressure an offset drift with
  temperature (a coefficient drawn uniform in +-tempco, times T - reference_k);
* white Gaussian noise of the configured RMS;
* quantisation to the configured resolution (round to nearest, ties to even).

Cost matters (the whole closed loop must run thousands of times faster than real time), so:

* noise comes in blocks of 1024 rows from one numpy PCG64 stream, with each sensor's bias
  already added: ~1 us per row of 31 channels (half of it making Python floats), against
  ~0.5 us per *value* for ``random.gauss``;
* quantisation adds and subtracts 1.5 * 2**52, which makes the FPU round to an integer (two
  float additions instead of a ``round()`` call, ~4x cheaper);
* the pressure offset with temperature is re-evaluated once per second of mission time: gas
  temperature moves at most ~6e-4 K/s, so the held offset is off by < 5e-4 Pa.

The same seed gives bit-identical samples; a different seed gives different noise, biases and
coefficients.

Faults are scheduled by mission time (scenario ``sensor_faults``): bias step, drift, stuck,
noise burst, spike, dropout. They are applied after the fast path, to the few faulty channels.
"""

from __future__ import annotations

import math
import random

import numpy as np

from hullwatch.hal.interfaces import SampleStatus

from .plant import Plant
from .scenario import Scenario

_BLOCK = 256
#: x + _ROUND - _ROUND rounds x to an integer (ties to even) for |x| < 2**51.
_ROUND = 1.5 * 2.0 ** 52
#: seconds between re-evaluations of the pressure sensors' temperature offsets
_OFFSET_PERIOD_S = 1.0
_OK = int(SampleStatus.OK)
_STALE = int(SampleStatus.STALE)
_NO_DATA = int(SampleStatus.NO_DATA)

PRESSURE, TEMPERATURE, FLOW = 0, 1, 2


class _Fault:
    __slots__ = ("kind", "channel_kind", "index", "start", "end", "magnitude", "held", "gauss")

    def __init__(self, kind: str, channel_kind: int, index: int, start: float, end: float,
                 magnitude: float, gauss: "random.Random") -> None:
        self.kind = kind
        self.channel_kind = channel_kind
        self.index = index
        self.start = start
        self.end = end
        self.magnitude = magnitude
        self.held: float | None = None
        self.gauss = gauss.gauss


class _NoiseStream:
    """Per sample: one row of normal deviates scaled by ``sigma`` plus ``offset`` for each of
    several channel groups, drawn in blocks of _BLOCK rows from one PCG64 stream.

    The stream is drawn row after row, so a seed gives the same deviates whatever the block
    size; the block size only sets how often numpy is called. A block is handed out as one flat
    float64 memoryview per group (row ``k`` of a group of ``w`` channels is ``[k*w:(k+1)*w]``):
    iterating a row makes short-lived floats that the float free list recycles, where
    ``tolist()`` would allocate and later free a long-lived float object per value.
    """

    def __init__(self, seed: int, groups: list[tuple[list[float], list[float]]]) -> None:
        self._gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
        self._sigma = np.asarray([x for sig, _ in groups for x in sig], dtype=float)
        self._offset = np.asarray([x for _, off in groups for x in off], dtype=float)
        self._cuts = []
        start = 0
        for sig, _ in groups:
            self._cuts.append((start, start + len(sig)))
            start += len(sig)

    def next_block(self) -> list[np.ndarray]:
        """The next _BLOCK rows: per group, a C-contiguous (_BLOCK, channels) float64 array."""
        block = self._gen.standard_normal((_BLOCK, len(self._sigma))) * self._sigma + self._offset
        return [np.ascontiguousarray(block[:, a:b]) for a, b in self._cuts]


def _is_power_of_two(q: float) -> bool:
    return q > 0.0 and math.isfinite(q) and math.frexp(q)[0] == 0.5


class SensorBank:
    """Every sensor channel of a station, sampled together at one time.

    After :meth:`sample`, ``p_value``/``p_status``/``p_time`` (and ``t_*``, ``f_*``) hold the
    latest sample of each channel in layout order (values in Pa, K, kg/s; status as
    :class:`SampleStatus` ints; sample times in mission seconds).
    """

    def __init__(self, scenario: Scenario, plant: Plant, seed: int | None = None) -> None:
        self.plant = plant
        seed = scenario.seed if seed is None else seed
        sp = scenario.sensors
        p_ids, t_ids, f_ids = scenario.channel_ids()
        self.ids = (p_ids, t_ids, f_ids)
        index = {m.name: i for i, m in enumerate(scenario.modules)}
        self._p_mod = [index[cid.rsplit(".", 1)[0]] for cid in p_ids]
        self._t_mod = [index[cid.rsplit(".", 1)[0]] for cid in t_ids]
        self._ref_k = sp.reference_k

        units = random.Random(f"{seed}/sensor-units")
        p_bias = [units.uniform(-sp.pressure_bias_pa, sp.pressure_bias_pa) for _ in p_ids]
        self._p_tc = [units.uniform(-sp.pressure_tempco_pa_per_k, sp.pressure_tempco_pa_per_k)
                      for _ in p_ids]
        t_bias = [units.uniform(-sp.temperature_bias_k, sp.temperature_bias_k) for _ in t_ids]
        self.p_bias, self.t_bias = p_bias, t_bias
        # Stratification: a module's temperature sensors sit in air warmer or cooler than its
        # mean gas temperature by sensor_offset_k; added to the unit bias (x + 0.0 is x).
        t_strat = [m.sensor_offset_k for m in scenario.modules]

        self._pq = sp.pressure_quantum_pa
        self._tq = sp.temperature_quantum_k
        self._fq = sp.flow_quantum_kg_s
        self._noise = _NoiseStream(seed, [
            ([sp.pressure_noise_pa] * len(p_ids), p_bias),
            ([sp.temperature_noise_k] * len(t_ids),
             [b + t_strat[m] for b, m in zip(t_bias, self._t_mod)]),
            ([sp.flow_noise_kg_s] * len(f_ids), [0.0] * len(f_ids)),
        ])
        empty = memoryview(b"").cast("d")
        self._mv_p, self._mv_t, self._mv_f = empty, empty, empty
        self._zt_block = np.zeros((0, len(t_ids)))
        self._row = _BLOCK  # next row of the current block; _BLOCK: draw a block first
        # Temperature channels are open loop (gas temperature depends on time alone): on the
        # lockstep grid, their samples for the rest of a noise block are computed at once with
        # numpy (same operations, same order) from the plant's predicted temperatures. A row
        # is used only when the sample time and the plant's actual temperatures match the
        # prediction; otherwise the scalar path runs.
        self._tpre_times: list[float] = []  #: grid time of each tabulated row
        self._tpre_first = 0  #: noise row of tabulated row 0
        self._tpre_temp: list[list[float]] = []  #: predicted plant temperatures, per row per module
        self._tpre_vals: list[list[float]] = []  #: temperature channel samples, per row per channel
        self._tpre_tries = 0  #: tabulation attempts in this noise block (bounded)
        # Quantisation: x * iq + r - r rounds x / q to an integer (ties to even), times q gives
        # the output. For a power-of-two quantum (0.25 Pa) x + R - R with R = r * q gives the
        # same result in two operations instead of four (scaling by a power of two is exact).
        self._ipq = 1.0 / self._pq if self._pq > 0.0 else 0.0
        self._itq = 1.0 / self._tq if self._tq > 0.0 else 0.0
        self._ifq = 1.0 / self._fq if self._fq > 0.0 else 0.0
        self._p_round = _ROUND * self._pq if _is_power_of_two(self._pq) else 0.0
        # The pressure rows, zipped once per offset update: (module, temperature offset).
        self._p_rows: list[tuple[int, float]] = []
        self._n = (len(p_ids), len(t_ids), len(f_ids))
        self._p_offset = [0.0] * len(p_ids)
        self._offset_due = -math.inf

        n_p, n_t, n_f = len(p_ids), len(t_ids), len(f_ids)
        self.p_value = [0.0] * n_p
        self.t_value = [0.0] * n_t
        self.f_value = [0.0] * n_f
        self._ok = ([_OK] * n_p, [_OK] * n_t, [_OK] * n_f)
        self.p_status = [_NO_DATA] * n_p
        self.t_status = [_NO_DATA] * n_t
        self.f_status = [_NO_DATA] * n_f
        self.p_time = [0.0] * n_p
        self.t_time = [0.0] * n_t
        self.f_time = [0.0] * n_f
        self._ever = ([False] * n_p, [False] * n_t, [False] * n_f)
        self._all_ever = False
        self.samples = 0

        lookup = {cid: (kind, j) for kind, ids in enumerate(self.ids) for j, cid in enumerate(ids)}
        pending = []
        for k, sf in enumerate(scenario.sensor_faults):
            kind, j = lookup[sf.sensor]
            end = sf.start_s + sf.duration_s
            pending.append(_Fault(sf.kind, kind, j, sf.start_s, end, sf.magnitude,
                                  random.Random(f"{seed}/sensor-fault/{k}")))
        pending.sort(key=lambda f: f.start)
        self._pending = pending
        self._next_fault = pending[0].start if pending else math.inf
        self._active: list[_Fault] = []

    def sample(self, t: float) -> None:
        """Sample every channel at mission time ``t`` from the plant's current state."""
        plant = self.plant
        self.samples += 1
        if t >= self._offset_due:
            ref = self._ref_k
            temp = plant.temperature
            self._p_offset = [c * (temp[m] - ref) for m, c in zip(self._p_mod, self._p_tc)]
            self._p_rows = list(zip(self._p_mod, self._p_offset))
            self._offset_due = t + _OFFSET_PERIOD_S
        faulty = t >= self._next_fault or self._active
        if faulty:  # a dropout repeats the previous sample
            prev = (self.p_value, self.t_value, self.f_value)
            prev_time = (self.p_time, self.t_time, self.f_time)
        k = self._row
        if k >= _BLOCK:
            zp, zt, zf = self._noise.next_block()
            self._mv_p, self._mv_t, self._mv_f = (memoryview(a.reshape(-1)) for a in (zp, zt, zf))
            self._zt_block = zt
            self._tpre_times = []
            self._tpre_tries = 0
            k = 0
        self._row = k + 1
        n_p, n_t, n_f = self._n
        temp = plant.temperature
        press = plant.pressure
        r = _ROUND
        zp = self._mv_p[k * n_p:k * n_p + n_p]
        q = self._pq
        if self._p_round:
            rq = self._p_round
            self.p_value = [press[m] + o + z + rq - rq for (m, o), z in zip(self._p_rows, zp)]
        elif q > 0.0:
            iq = self._ipq
            self.p_value = [((press[m] + o + z) * iq + r - r) * q for (m, o), z in zip(self._p_rows, zp)]
        else:
            self.p_value = [press[m] + o + z for (m, o), z in zip(self._p_rows, zp)]
        j = k - self._tpre_first
        if 0 <= j < len(self._tpre_times) and self._tpre_times[j] == t and self._tpre_temp[j] == temp:
            # (Each row is used once: the faults may write into it as into a fresh list.)
            self.t_value = self._tpre_vals[j]
        else:
            zt = self._mv_t[k * n_t:k * n_t + n_t]
            q = self._tq
            if q > 0.0:
                iq = self._itq
                self.t_value = [((temp[m] + z) * iq + r - r) * q for m, z in zip(self._t_mod, zt)]
            else:
                self.t_value = [temp[m] + z for m, z in zip(self._t_mod, zt)]
            if n_t and self._tpre_tries < 3:
                self._tabulate_temperatures(t, k)
        if n_f:
            zf = self._mv_f[k * n_f:k * n_f + n_f]
            q = self._fq
            if q > 0.0:
                iq = self._ifq
                self.f_value = [((f + z) * iq + r - r) * q for f, z in zip(plant.repress_flow, zf)]
            else:
                self.f_value = [f + z for f, z in zip(plant.repress_flow, zf)]
            self.f_time = [t] * n_f
        self.p_time = [t] * n_p
        self.t_time = [t] * n_t
        self.p_status, self.t_status, self.f_status = self._ok

        if faulty:
            if t >= self._next_fault:
                self._activate(t)
            if self._active:
                self._apply_faults(t, prev, prev_time)
        if not self._all_ever:
            self._note_produced()

    def _tabulate_temperatures(self, t: float, k: int) -> None:
        """Temperature channel samples for noise rows ``k + 1`` .. end of block, assuming one
        sample per grid step from ``t`` on (see __init__)."""
        self._tpre_tries += 1
        count = _BLOCK - k
        pred = self.plant.grid_temperatures(t, count)
        if pred is None:
            return
        times, temps = pred
        x = temps[:, self._t_mod] + self._zt_block[k:]
        q = self._tq
        if q > 0.0:
            x = ((x * self._itq + _ROUND) - _ROUND) * q  # the scalar path's operations
        self._tpre_first = k
        self._tpre_times = times
        # Lists of row lists: a row is then one index away in the per-cycle path.
        self._tpre_temp = temps.tolist()
        self._tpre_vals = x.tolist()

    def _note_produced(self) -> None:
        """Remember which channels have produced a sample (a dropout before that is NO_DATA)."""
        for ever, st in zip(self._ever, (self.p_status, self.t_status, self.f_status)):
            for j, s in enumerate(st):
                if s == _OK:
                    ever[j] = True
        self._all_ever = all(all(e) for e in self._ever)

    def _activate(self, t: float) -> None:
        pending = self._pending
        while pending and pending[0].start <= t:
            self._active.append(pending.pop(0))
        self._next_fault = pending[0].start if pending else math.inf

    def _apply_faults(self, t: float, prev: tuple[list[float], ...],
                      prev_time: tuple[list[float], ...]) -> None:
        values = (self.p_value, self.t_value, self.f_value)
        times = (self.p_time, self.t_time, self.f_time)
        status = [self.p_status, self.t_status, self.f_status]
        quanta = (self._pq, self._tq, self._fq)
        copied = [False, False, False]
        expired = []
        for f in self._active:
            ck, j = f.channel_kind, f.index
            vals = values[ck]
            kind = f.kind
            if kind == "dropout":
                if t >= f.end:
                    expired.append(f)
                    continue
                if not copied[ck]:
                    status[ck] = list(status[ck])
                    copied[ck] = True
                vals[j] = prev[ck][j]
                times[ck][j] = prev_time[ck][j]
                status[ck][j] = _STALE if self._ever[ck][j] else _NO_DATA
                continue
            if t >= f.end and not (kind == "spike" and f.held is None):
                expired.append(f)
                continue
            v = vals[j]
            if kind == "bias":
                v += f.magnitude
            elif kind == "drift":
                v += f.magnitude * (t - f.start)
            elif kind == "stuck":
                if f.held is None:
                    f.held = v
                v = f.held
            elif kind == "noise":
                v += f.gauss(0.0, f.magnitude)
            elif kind == "spike":
                v += f.magnitude
                if f.held is None:
                    f.held = v  # marks the first spiked sample
                if t >= f.end:
                    expired.append(f)
            q = quanta[ck]
            if q > 0.0 and kind != "stuck":
                v = (v / q + _ROUND - _ROUND) * q
            vals[j] = v
        for f in expired:
            self._active.remove(f)
        self.p_status, self.t_status, self.f_status = status
