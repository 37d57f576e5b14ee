"""Reading scenario values: the field declaration and the checker that validates values against
it, raising :class:`~hullwatch.sim.errors.ScenarioError` naming the source, the key path (for
example ``leaks[0].diameter_m``) and what was expected. The field tables themselves are in
:mod:`hullwatch.sim.scenario`.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any

from .errors import ScenarioError

INF = math.inf

#: Marks a field without a default: it must be given.
REQUIRED: Any = object()


# --------------------------------------------------------------------------------------------
# Field tables: key, kind, default, unit, description. Kinds: "float", "int", "str", "bool",
# "utc", "names" (list of strings), "pair" (two strings), "events" (list of [start_s, duration_s]),
# "tables" (a list of tables with their own `fields`).
# Checks: "pos" (> 0), "nonneg" (>= 0), "frac" (0..1), or a tuple of allowed strings.


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    kind: str
    default: Any
    unit: str
    doc: str
    check: str | tuple[str, ...] | None = None
    #: kind "tables": the fields of each table in the list
    fields: tuple["Field", ...] = ()



# --------------------------------------------------------------------------------------------
# Validation.


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Reads typed values out of nested dicts, raising ScenarioError with the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(message, source=self.source, key=key)

    def table(self, data: Any, fields: tuple[Field, ...], path: str,
              extra: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a table, got {_describe(data)}")
        known = {f.key for f in fields} | set(extra)
        for key in data:
            if key not in known:
                raise self.fail(f"{path}.{key}" if path else str(key),
                                "unknown key; expected one of " + ", ".join(sorted(known)))
        out: dict[str, Any] = {}
        for f in fields:
            key = f"{path}.{f.key}" if path else f.key
            if f.key not in data:
                if f.default is REQUIRED:
                    raise self.fail(key, f"missing; expected {self._expected(f)}")
                out[f.key] = f.default
                continue
            out[f.key] = self.value(data[f.key], f, key)
        return out

    @staticmethod
    def _expected(f: Field) -> str:
        unit = f" ({f.unit})" if f.unit and f.kind in ("float", "int") else ""
        what = {
            "float": "a number", "int": "an integer", "str": "a string", "bool": "true or false",
            "utc": "a UTC date-time such as 2018-08-29T20:00:00Z", "names": "a list of strings",
            "pair": "a list of two module names", "events": "a list of [start_s, duration_s] pairs",
            "tables": "a list of tables",
        }[f.kind]
        if f.check == "pos":
            what += " > 0"
        elif f.check == "nonneg":
            what += " >= 0"
        elif f.check == "frac":
            what += " between 0 and 1"
        elif isinstance(f.check, tuple):
            what = "one of " + ", ".join(f'"{c}"' for c in f.check)
        return what + unit

    def value(self, raw: Any, f: Field, key: str) -> Any:
        bad = self.fail(key, f"expected {self._expected(f)}, got {_describe(raw)}")
        kind = f.kind
        if kind == "float":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or math.isnan(raw):
                raise bad
            value: Any = float(raw)
            if math.isinf(value) and not (value > 0 and f.default == INF):
                raise bad
        elif kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise bad
            value = raw
        elif kind == "str":
            if not isinstance(raw, str):
                raise bad
            value = raw
        elif kind == "bool":
            if not isinstance(raw, bool):
                raise bad
            value = raw
        elif kind == "utc":
            value = self._utc(raw, bad)
        elif kind == "names":
            if not isinstance(raw, (list, tuple)) or not all(isinstance(x, str) for x in raw):
                raise bad
            value = tuple(raw)
        elif kind == "pair":
            if (not isinstance(raw, (list, tuple)) or len(raw) != 2
                    or not all(isinstance(x, str) for x in raw)):
                raise bad
            value = (raw[0], raw[1])
        elif kind == "events":
            value = self._events(raw, bad, key)
        elif kind == "tables":
            if not isinstance(raw, (list, tuple)):
                raise bad
            value = tuple(self.table(item, f.fields, f"{key}[{i}]") for i, item in enumerate(raw))
        else:  # pragma: no cover - the field tables only use the kinds above
            raise AssertionError(kind)
        check = f.check
        if check == "pos" and not value > 0:
            raise bad
        if check == "nonneg" and not value >= 0:
            raise bad
        if check == "frac" and not 0 <= value <= 1:
            raise bad
        if isinstance(check, tuple) and value not in check:
            raise bad
        return value

    @staticmethod
    def _utc(raw: Any, bad: ScenarioError) -> float:
        if isinstance(raw, str):
            try:
                raw = _dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise bad from None
        if isinstance(raw, _dt.datetime) and raw.tzinfo is not None:
            return raw.timestamp()
        raise bad

    def _events(self, raw: Any, bad: ScenarioError, key: str) -> tuple[tuple[float, float], ...]:
        if not isinstance(raw, (list, tuple)):
            raise bad
        events = []
        for i, ev in enumerate(raw):
            if (not isinstance(ev, (list, tuple)) or len(ev) != 2
                    or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in ev)):
                raise self.fail(f"{key}[{i}]", f"expected [start_s, duration_s], got {_describe(ev)}")
            start, dur = float(ev[0]), float(ev[1])
            if not (math.isfinite(start) and start >= 0 and math.isfinite(dur) and dur > 0):
                raise self.fail(f"{key}[{i}]", "expected start_s >= 0 and duration_s > 0, got "
                                f"{_describe(ev)}")
            events.append((start, dur))
        events.sort()
        for i in range(1, len(events)):
            if events[i][0] < events[i - 1][0] + events[i - 1][1]:
                raise self.fail(key, f"events overlap: {events[i - 1]} and {events[i]}")
        return tuple(events)
