"""Measured repress gas, booked into the inventory (docs/fdir.md, Stage 2, the tested signal).

A repress valve's flow meter (``<id>.flow``, kg/s) is integrated into ``added_kg`` of its module,
so a commanded repressurisation is booked instead of seen as a rise. The meter is one sensor, and
nothing votes it; three rules keep a meter going wrong from making a leak:

- a meter is believed only while its valve's feedback reads open (gas enters only through an open
  valve: a biased or stuck meter on a closed supply is not gas added);
- each cycle books the **median of the meter's last three readings**: a spike of one sample books
  nothing, while a real flow is booked whole, one cycle late (the median of a rise or a fall is
  the sample before);
- the gas booked over a test window carries an uncertainty of ``leak.flow_uncertainty`` of itself:
  :meth:`RepressBooking.booked_kg` gives it per window, and the leak test allows for it
  (a meter reading 3.5 % high through a routine 3.5 kg repress books 0.12 kg that never came,
  which the tests read as a loss of 18 kg/day and sealed a healthy module).
"""

from __future__ import annotations

from ...hal.interfaces import Frame, Layout, ValveKind


class RepressBooking:
    """The flow meters of ``layout`` and the gas they booked per module.

    Args:
        layout: the device layout (its flow channels and repress valves).
        history: cycles of booked gas kept per metered module (the longest test window; see
            :meth:`resize` and :meth:`resize_coarse`).
    """

    def __init__(self, layout: Layout, history: int = 0) -> None:
        self.flow_module = [layout.module_index(c.module) for c in layout.flow]
        # Each flow meter's repress valve ("<id>.flow" meters the valve "<id>"; -1: none known).
        repress = {v.id: i for i, v in enumerate(layout.valves) if v.kind == ValveKind.REPRESS}
        self.flow_valve = [repress.get(c.id[:-5] if c.id.endswith(".flow") else c.id, -1)
                           for c in layout.flow]
        #: per module: gas booked so far, kg
        self.added_kg = [0.0] * len(layout.modules)
        n = len(self.flow_module)
        self._last = [[0.0, 0.0] for _ in range(n)]  # each meter's two readings before this one
        self.modules = sorted(set(self.flow_module))  #: the metered modules
        self.resize(history)

    def resize(self, history: int) -> None:
        """Keep ``history`` cycles of booked gas from now on (the leak tests' longest window). A
        parameter load changes the windows; the tests restart then, so the history before does
        not matter."""
        self._len = history + 1
        self._hist = {m: [self.added_kg[m]] * self._len for m in self.modules}  # per cycle, a ring
        self._i = 0
        self.resize_coarse(1, 0)

    def resize_coarse(self, every: int, history: int) -> None:
        """Also keep ``history`` samples taken every ``every`` cycles (the slow test's decimated
        windows; it sizes them, :class:`~.slowleak.SlowLeakDetector`)."""
        self._every = max(1, every)
        self._clen = history + 1
        self._chist = {m: [self.added_kg[m]] * self._clen for m in self.modules}
        self._ci = 0
        self._k = 0

    def book(self, frame: Frame, feedback: list[float], open_threshold: float, dt: float) -> None:
        """One cycle of ``dt`` s: book each meter's median flow while its valve reads open
        (``feedback`` above ``open_threshold``) and its sample is OK, and keep the history."""
        fs = frame.flow_status
        fv = frame.flow
        added = self.added_kg
        for j, m in enumerate(self.flow_module):
            last = self._last[j]
            v = self.flow_valve[j]
            if fs[j]:
                continue  # no sample: nothing booked, the history of readings holds
            x = fv[j]
            a, b = last
            last[0], last[1] = b, x
            if v < 0 or feedback[v] > open_threshold:
                # median of three
                med = x if (a <= x <= b or b <= x <= a) else (a if (x <= a <= b or b <= a <= x) else b)
                added[m] += med * dt
        i = self._i = (self._i + 1) % self._len
        for m in self.modules:
            self._hist[m][i] = added[m]
        self._k += 1
        if self._k % self._every == 0:
            ci = self._ci = (self._ci + 1) % self._clen
            for m in self.modules:
                self._chist[m][ci] = added[m]

    def booked_kg(self, members: list[int], n: int, coarse: bool = False) -> float:
        """Gas booked into the modules ``members`` over the last ``n`` cycles, or with
        ``coarse`` the last ``n`` coarse samples (at most the history), kg; 0 for modules
        without a meter."""
        if coarse:
            hist, i, length = self._chist, self._ci, self._clen
        else:
            hist, i, length = self._hist, self._i, self._len
        j = (i - min(n, length - 1)) % length
        total = 0.0
        for m in members:
            h = hist.get(m)
            if h is not None:
                total += h[i] - h[j]
        return total

    def allowance_kg_s(self, booked_kg: float, window_s: float, uncertainty: float) -> float:
        """The loss rate (kg/s) a window of ``window_s`` may show because the ``booked_kg`` of
        gas booked in it is off by up to ``uncertainty`` of itself: a step of S moves a
        least-squares slope over a window of length L by up to 1.5 S / L."""
        return 1.5 * uncertainty * abs(booked_kg) / window_s
