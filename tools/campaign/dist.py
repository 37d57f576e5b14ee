"""Distributions of campaign parameters, and the spec error they raise.

A parameter of a campaign spec is a constant, ``[...]``/``{choice = [...]}`` (one element drawn),
``{uniform = [lo, hi]}``, ``{log_uniform = [lo, hi]}``, ``{each = [...]}`` (a grid dimension) or
``"any"`` (every module / valve of the base scenario); see :mod:`.spec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError


class SpecError(InputError):
    """A campaign spec is invalid. The message names the file, the key and what was expected."""

    def __init__(self, message: str, source: str | None = None, key: str | None = None) -> None:
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.source = source
        self.key = key


# --------------------------------------------------------------------------------------------
# distributions


class Dist:
    """A distribution of one parameter. ``grid`` is the list of values of an ``each`` dimension
    (None for a random or constant parameter)."""

    grid: list[Any] | None = None

    def draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Const(Dist):
    value: Any

    def draw(self, rng: np.random.Generator) -> Any:
        return self.value


@dataclass(frozen=True)
class Choice(Dist):
    values: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return _plain(self.values[int(rng.integers(len(self.values)))])


@dataclass(frozen=True)
class Uniform(Dist):
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> Any:
        return float(rng.uniform(self.lo, self.hi)) if self.hi > self.lo else self.lo


@dataclass(frozen=True)
class LogUniform(Dist):
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> Any:
        if self.hi <= self.lo:
            return self.lo
        return float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))


@dataclass(frozen=True)
class Each(Dist):
    values: tuple[Any, ...]

    @property
    def grid(self) -> list[Any]:  # type: ignore[override]
        return list(self.values)

    def draw(self, rng: np.random.Generator) -> Any:  # pragma: no cover - grid values are indexed
        raise TypeError("an each-distribution is enumerated, not drawn")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def parse_dist(raw: Any, where: str, source: str, *, number: bool = True,
               choices: tuple[Any, ...] | None = None, any_values: tuple[Any, ...] | None = None) -> Dist:
    """Parse one distribution. ``number`` requires numeric values; ``choices`` restricts values to
    a set; ``any_values`` is what ``"any"`` expands to (None: ``"any"`` not allowed)."""

    def check(v: Any) -> Any:
        if isinstance(v, str) and v == "any" and any_values is not None:
            raise SpecError('"any" stands for a whole set; use it alone, not inside a list', source, where)
        if number and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise SpecError(f"expected a number, got {v!r}", source, where)
        if choices is not None and v not in choices:
            raise SpecError(f"expected one of {', '.join(map(str, choices))}, got {v!r}", source, where)
        return v

    def values(v: Any, what: str) -> tuple[Any, ...]:
        if v == "any" and any_values is not None:
            return tuple(any_values)
        if not isinstance(v, list) or not v:
            raise SpecError(f"{what}: expected a non-empty list, got {v!r}", source, where)
        return tuple(check(x) for x in v)

    if isinstance(raw, list):
        return Choice(values(raw, "list"))
    if isinstance(raw, str) and raw == "any" and any_values is not None:
        return Choice(tuple(any_values))
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise SpecError(
                f"expected a table with one key (choice, uniform, log_uniform or each), got {sorted(raw)}",
                source, where)
        ((kind, arg),) = raw.items()
        if kind == "choice":
            return Choice(values(arg, "choice"))
        if kind == "each":
            return Each(values(arg, "each"))
        if kind in ("uniform", "log_uniform"):
            if not number:
                raise SpecError(f"{kind} needs numbers; use choice or each here", source, where)
            if (not isinstance(arg, list) or len(arg) != 2
                    or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in arg)):
                raise SpecError(f"{kind}: expected [low, high] (two numbers), got {arg!r}", source, where)
            lo, hi = float(arg[0]), float(arg[1])
            if hi < lo:
                raise SpecError(f"{kind}: low {lo} > high {hi}", source, where)
            if kind == "log_uniform":
                if lo <= 0:
                    raise SpecError(f"log_uniform: low must be > 0, got {lo}", source, where)
                return LogUniform(lo, hi)
            return Uniform(lo, hi)
        raise SpecError(f"unknown distribution {kind!r}: expected choice, uniform, log_uniform or each",
                        source, where)
    return Const(check(raw))
