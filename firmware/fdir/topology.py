"""Connected segments: modules joined by open valves and hatches, judged by valve feedback.

Recomputed only when the open/closed pattern of the feedback changes (a bit mask compare), so the
per-cycle cost is one list comparison. A valve counts as open as soon as its feedback exceeds
``open_threshold``: a valve that has started to open already lets gas through, so for the gas
inventory its two sides are one segment.
"""

from __future__ import annotations

from ...hal.interfaces import Layout, ValveKind


class Topology:
    """Segments of the station. ``seg_of[m]`` is module m's segment number; ``members[s]`` the
    module indices of segment s (ascending); ``masks[s]`` their bit mask; ``n_segments`` how many."""

    def __init__(self, layout: Layout, open_threshold: float) -> None:
        self.n_modules = len(layout.modules)
        self.open_threshold = open_threshold
        self.ends: list[tuple[int, int]] = []  # (a, b) module indices; b = -1 for repress valves
        for v in layout.valves:
            a = layout.module_index(v.module_a)
            b = -1 if v.kind == ValveKind.REPRESS or v.module_b is None else layout.module_index(v.module_b)
            self.ends.append((a, b))
        self.seg_of = list(range(self.n_modules))
        self.members: list[list[int]] = [[m] for m in range(self.n_modules)]
        self.masks: list[int] = [1 << m for m in range(self.n_modules)]
        self.n_segments = self.n_modules
        self.open_bits = -1  # unknown until the first update
        self.changes = 0

    def open_pattern(self, fb: list[float]) -> int:
        thr = self.open_threshold
        bits = 0
        for i, (a, b) in enumerate(self.ends):
            if b >= 0 and fb[i] > thr:
                bits |= 1 << i
        return bits

    def update(self, fb: list[float]) -> bool:
        """Recompute the segments if the open pattern changed. Returns True if it changed."""
        bits = self.open_pattern(fb)
        if bits == self.open_bits:
            return False
        self.open_bits = bits
        self.changes += 1
        parent = list(range(self.n_modules))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, (a, b) in enumerate(self.ends):
            if bits >> i & 1:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        roots: dict[int, int] = {}
        members: list[list[int]] = []
        for m in range(self.n_modules):
            r = find(m)
            if r not in roots:
                roots[r] = len(members)
                members.append([])
            s = roots[r]
            self.seg_of[m] = s
            members[s].append(m)
        self.members = members
        self.masks = [sum(1 << m for m in mem) for mem in members]
        self.n_segments = len(members)
        return True

    def segment_of_mask(self, mask: int) -> int:
        """Segment number whose members are exactly ``mask``, or -1."""
        for s, mk in enumerate(self.masks):
            if mk == mask:
                return s
        return -1

    def boundary_valves(self, mask: int) -> list[int]:
        """Valves (not repress) with exactly one end inside the module set ``mask``."""
        out = []
        for i, (a, b) in enumerate(self.ends):
            if b < 0:
                continue
            if (mask >> a & 1) != (mask >> b & 1):
                out.append(i)
        return out

    def inner_valves(self, mask: int) -> list[int]:
        """Valves (not repress) with both ends inside the module set ``mask``."""
        return [i for i, (a, b) in enumerate(self.ends) if b >= 0 and mask >> a & 1 and mask >> b & 1]


#: The subject of an event about a segment (docs/telemetry.md): one module's name when the segment
#: is that module, ``station`` when it is every module of the layout, otherwise ``seg:0x`` and the
#: segment's module mask in hexadecimal, bit i for the layout's module i (LayoutReport order).
STATION_SUBJECT = "station"
SEGMENT_PREFIX = "seg:0x"


def segment_label(mask: int, names: list[str]) -> str:
    """The event subject naming the module set ``mask`` (see :data:`SEGMENT_PREFIX`)."""
    if mask and mask & (mask - 1) == 0:
        return names[mask.bit_length() - 1]
    if mask == (1 << len(names)) - 1:
        return STATION_SUBJECT
    return f"{SEGMENT_PREFIX}{mask:x}"


def segment_modules(subject: str, names: list[str]) -> list[str] | None:
    """The module names a segment subject stands for, in layout order; None when ``subject`` is
    not a segment subject (a sensor or valve id, or a name not in ``names``). Ground tools use it
    to print ``soyuz-om+rassvet`` for ``seg:0x6``."""
    if subject == STATION_SUBJECT:
        return list(names)
    if subject.startswith(SEGMENT_PREFIX):
        try:
            mask = int(subject[len(SEGMENT_PREFIX):], 16)
        except ValueError:
            return None
        if mask <= 0 or mask >> len(names):
            return None
        return [n for i, n in enumerate(names) if mask >> i & 1]
    return [subject] if subject in names else None
