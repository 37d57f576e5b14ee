"""Campaign specs: load and validate a spec TOML, draw its cases deterministically.

A spec names a master ``seed`` and one or more case ``groups``. Each group starts from a base
scenario (a preset name, or a path relative to the spec file) and says how to vary it: the leak
(hole diameter, module, discharge coefficient, start time), sensor faults, valve faults and any
other scenario key. Every varied value is a *distribution*:

``3.5`` or ``"soyuz-om"``             a constant
``[1, 2, 3]`` / ``{choice = [...]}``  one element drawn at random
``{uniform = [lo, hi]}``              uniform on [lo, hi)
``{log_uniform = [lo, hi]}``          log-uniform on [lo, hi), lo > 0
``{each = [...]}``                    a grid dimension: every element in turn
``"any"`` (module, valve keys)        any module / valve of the base scenario
``{each = "any"}``                    every module / valve of the base scenario in turn

A group holds ``cases * prod(len(each))`` cases. Case ``i`` of a group is grid point
``i mod G`` (G the grid size) and repeat ``i div G``, and each random parameter of it is drawn from
its own generator seeded by ``(seed, group name, i, parameter name)``: a case's parameters do not
depend on how many cases there are, on the other groups, or on the order cases are run in.

Example (the built-in ``smoke`` spec)::

    name = "smoke"
    seed = 1
    timeout_s = 120

    [[groups]]
    name = "leak"
    scenario = "soyuz-ms09"
    duration_s = 1800
    [groups.leak]
    diameter_mm = {each = [2, 6]}
    module = "any"
    start_s = {uniform = [120, 300]}
    [groups.sensor_fault]
    count = {each = [0, 1]}

Errors: :class:`SpecError` (an :class:`~hullwatch.tools.errors.InputError`) naming the file, the
key and what was expected.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, cast

import numpy as np

from ..errors import InputError
from .case import build_scenario_dict

SENSOR_FAULT_KINDS = ("bias", "drift", "stuck", "noise", "spike", "dropout")
VALVE_FAULT_KINDS = ("stuck_open", "stuck_closed", "feedback_mismatch")

#: Default fault magnitudes when a spec gives none, in the units the scenario format uses for
#: each kind (docs/scenarios.md): bias Pa, drift Pa/s, noise Pa RMS, spike Pa; stuck and dropout
#: take no magnitude.
DEFAULT_MAGNITUDES: dict[str, Any] = {
    "bias": {"uniform": [-300.0, 300.0]},
    "drift": {"uniform": [-0.5, 0.5]},
    "stuck": 0.0,
    "noise": {"uniform": [10.0, 50.0]},
    "spike": {"uniform": [500.0, 5000.0]},
    "dropout": 0.0,
}

_SEED_MAX = 2**31 - 1


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


# --------------------------------------------------------------------------------------------
# spec


@dataclass(frozen=True)
class Group:
    """One group of cases. ``params`` maps a parameter path (``leak.diameter_mm``,
    ``sensor_fault.kind``, ``vary.<dotted scenario key>``) to its distribution, in a fixed order."""

    name: str
    scenario: str  #: preset name or absolute path
    cases: int  #: repeats of each grid point
    duration_s: float | None
    timeout_s: float
    has_leak: bool
    has_sensor_fault: bool
    has_valve_fault: bool
    params: dict[str, Dist]
    modules: tuple[str, ...]  #: module names of the base scenario
    valves: tuple[str, ...]  #: connection ids of the base scenario
    grid_keys: tuple[str, ...] = field(default=())

    @property
    def grid_size(self) -> int:
        return math.prod(len(self.params[k].grid or ()) for k in self.grid_keys) if self.grid_keys else 1

    @property
    def size(self) -> int:
        return self.cases * self.grid_size


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    seed: int
    source: str  #: file path or ``builtin:<name>``
    groups: tuple[Group, ...]
    fdir_params: str | None  #: FDIR parameter file (absolute path) or None for the defaults
    digest: str  #: sha256 of the spec text: a campaign directory belongs to one spec

    @property
    def size(self) -> int:
        return sum(g.size for g in self.groups)

    def case_ids(self) -> list[str]:
        return [case_id(g.name, i) for g in self.groups for i in range(g.size)]


def case_id(group: str, index: int) -> str:
    return f"{group}-{index:05d}"


def builtin_spec_names() -> list[str]:
    files = importlib.resources.files("hullwatch.tools.campaign.specs")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def load_spec(name_or_path: str | Path) -> Spec:
    """Load a spec from a file, or a built-in spec by name (``fdir-acceptance``, ``smoke``).

    Raises :class:`SpecError` for a missing file or an invalid spec."""
    path = Path(name_or_path)
    name = str(name_or_path)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        return spec_from_text(text, str(path), base_dir=path.resolve().parent)
    if name in builtin_spec_names():
        text = importlib.resources.files("hullwatch.tools.campaign.specs").joinpath(f"{name}.toml").read_text("utf-8")
        return spec_from_text(text, f"builtin:{name}", base_dir=None)
    if path.suffix == ".toml" or path.exists():
        raise SpecError("no such spec file" if not path.exists() else "is not a file", str(path))
    raise SpecError(
        f"no such spec file or built-in spec (built-in: {', '.join(builtin_spec_names())})", name)


def spec_from_text(text: str, source: str, base_dir: Path | None = None) -> Spec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", source) from exc
    return spec_from_dict(data, source, base_dir=base_dir,
                          digest=hashlib.sha256(text.encode("utf-8")).hexdigest())


_TOP_KEYS = {"name", "description", "seed", "timeout_s", "fdir_params", "groups"}
_GROUP_KEYS = {"name", "scenario", "cases", "duration_s", "timeout_s", "leak", "sensor_fault",
               "valve_fault", "vary"}
_LEAK_KEYS = {"diameter_mm", "module", "cd", "start_s"}
_SF_KEYS = {"count", "probability", "module", "kinds", "start_s", "duration_s", "magnitude"}
_VF_KEYS = {"count", "probability", "valve", "kinds", "start_s"}


def _unknown(table: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        prefix = f"{where}." if where else ""
        raise SpecError(f"unknown key; expected one of {', '.join(sorted(allowed))}",
                        source, prefix + extra[0])


def _number(table: Mapping[str, Any], key: str, source: str, where: str, default: Any = None,
            *, minimum: float | None = None, integer: bool = False) -> Any:
    if key not in table:
        if default is None:
            raise SpecError("missing; expected a number", source, f"{where}{key}")
        return default
    v = table[key]
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise SpecError(f"expected {'an integer' if integer else 'a number'}, got {v!r}", source, f"{where}{key}")
    if minimum is not None and v < minimum:
        raise SpecError(f"expected a value >= {minimum}, got {v!r}", source, f"{where}{key}")
    return v


def spec_from_dict(data: Mapping[str, Any], source: str, *, base_dir: Path | None = None,
                   digest: str | None = None) -> Spec:
    """Validate a parsed spec. Base scenarios are resolved (presets by name, files relative to
    ``base_dir``) so that ``"any"`` module/valve choices and ``vary`` keys can be checked."""
    _unknown(data, _TOP_KEYS, source, "")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError("missing or empty; expected a string", source, "name")
    seed = _number(data, "seed", source, "", integer=True, minimum=0)
    default_timeout = float(_number(data, "timeout_s", source, "", default=3600.0, minimum=1e-3))
    fdir = data.get("fdir_params")
    if fdir is not None:
        if not isinstance(fdir, str):
            raise SpecError(f"expected a file path, got {fdir!r}", source, "fdir_params")
        fdir = str(_resolve(fdir, base_dir))
    groups_raw = data.get("groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise SpecError("missing; expected at least one [[groups]] table", source, "groups")
    groups: list[Group] = []
    seen: set[str] = set()
    for gi, g in enumerate(groups_raw):
        where = f"groups[{gi}]"
        if not isinstance(g, dict):
            raise SpecError("expected a table", source, where)
        group = _parse_group(g, where, source, base_dir, default_timeout)
        if group.name in seen:
            raise SpecError(f"duplicate group name {group.name!r}", source, f"{where}.name")
        seen.add(group.name)
        groups.append(group)
    if digest is None:
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return Spec(name=name, description=str(data.get("description", "")), seed=int(seed), source=source,
                groups=tuple(groups), fdir_params=fdir, digest=digest)


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p.resolve()


def _base_scenario(ref: str, base_dir: Path | None, source: str, where: str) -> tuple[str, dict]:
    """Resolve a group's base scenario to (preset name or absolute path, scenario dict)."""
    from ...sim import scenario as sc
    from ...sim.errors import SimError

    try:
        if ref in sc.preset_names():
            return ref, sc.preset_dict(ref)
        path = _resolve(ref, base_dir)
        if not path.is_file():
            raise SpecError(f"no preset or scenario file {ref!r} (presets: {', '.join(sc.preset_names())})",
                            source, where)
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        sc.scenario_from_dict(data, str(path))  # validate now, not in a worker
        return str(path), data
    except SimError as exc:
        raise SpecError(f"base scenario is invalid: {exc}", source, where) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"base scenario is not valid TOML: {exc}", source, where) from exc


def _parse_group(g: Mapping[str, Any], where: str, source: str, base_dir: Path | None,
                 default_timeout: float) -> Group:
    _unknown(g, _GROUP_KEYS, source, where)
    name = g.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise SpecError(f"expected a name of letters, digits, - and _, got {name!r}", source, f"{where}.name")
    ref = g.get("scenario")
    if not isinstance(ref, str) or not ref:
        raise SpecError("missing; expected a preset name or a scenario file", source, f"{where}.scenario")
    scenario_ref, base = _base_scenario(ref, base_dir, source, f"{where}.scenario")
    modules = tuple(str(m["name"]) for m in base.get("modules", []) if isinstance(m, dict) and "name" in m)
    valves = tuple(str(c["id"]) for c in base.get("connections", []) if isinstance(c, dict) and "id" in c)
    cases = int(_number(g, "cases", source, f"{where}.", default=1, minimum=1, integer=True))
    duration = g.get("duration_s")
    if duration is not None:
        duration = float(_number(g, "duration_s", source, f"{where}.", minimum=1e-3))
    timeout = float(_number(g, "timeout_s", source, f"{where}.", default=default_timeout, minimum=1e-3))
    params: dict[str, Dist] = {}

    def add(path: str, raw: Any, **kw: Any) -> None:
        params[path] = parse_dist(raw, f"{where}.{path}", source, **kw)

    leak = g.get("leak")
    if leak is not None:
        if not isinstance(leak, dict):
            raise SpecError("expected a table", source, f"{where}.leak")
        _unknown(leak, _LEAK_KEYS, source, f"{where}.leak")
        if "diameter_mm" not in leak:
            raise SpecError("missing; expected a distribution of hole diameters in mm", source,
                            f"{where}.leak.diameter_mm")
        add("leak.diameter_mm", leak["diameter_mm"])
        add("leak.module", leak.get("module", "any"), number=False, choices=modules, any_values=modules)
        add("leak.cd", leak.get("cd", 0.7))
        add("leak.start_s", leak.get("start_s", 0.0))
        _check_positive(params["leak.diameter_mm"], source, f"{where}.leak.diameter_mm")
        _check_positive(params["leak.cd"], source, f"{where}.leak.cd")

    sf = g.get("sensor_fault")
    if sf is not None:
        if not isinstance(sf, dict):
            raise SpecError("expected a table", source, f"{where}.sensor_fault")
        _unknown(sf, _SF_KEYS, source, f"{where}.sensor_fault")
        _parse_count(sf, "sensor_fault", add, params, source, where)
        module_raw = sf.get("module", "leak")
        if module_raw == "leak":
            if leak is None:
                raise SpecError('"leak" needs a [leak] table in this group', source, f"{where}.sensor_fault.module")
            params["sensor_fault.module"] = Const("leak")
        else:
            add("sensor_fault.module", module_raw, number=False, choices=modules, any_values=modules)
        kinds = sf.get("kinds", list(SENSOR_FAULT_KINDS))
        add("sensor_fault.kind", kinds if isinstance(kinds, (list, dict)) else [kinds],
            number=False, choices=SENSOR_FAULT_KINDS)
        add("sensor_fault.start_s", sf.get("start_s", 0.0))
        if "duration_s" in sf:  # absent: the scenario's default (for ever; one sample for a spike)
            add("sensor_fault.duration_s", sf["duration_s"])
        mags = sf.get("magnitude", {})
        if not isinstance(mags, dict):
            raise SpecError("expected a table of kind = distribution", source, f"{where}.sensor_fault.magnitude")
        _unknown(mags, set(SENSOR_FAULT_KINDS), source, f"{where}.sensor_fault.magnitude")
        for kind in SENSOR_FAULT_KINDS:
            add(f"sensor_fault.magnitude.{kind}", mags.get(kind, DEFAULT_MAGNITUDES[kind]))

    vf = g.get("valve_fault")
    if vf is not None:
        if not isinstance(vf, dict):
            raise SpecError("expected a table", source, f"{where}.valve_fault")
        _unknown(vf, _VF_KEYS, source, f"{where}.valve_fault")
        if not valves:
            raise SpecError("the base scenario has no connections to fault", source, f"{where}.valve_fault")
        _parse_count(vf, "valve_fault", add, params, source, where)
        add("valve_fault.valve", vf.get("valve", "any"), number=False, choices=valves, any_values=valves)
        kinds = vf.get("kinds", list(VALVE_FAULT_KINDS))
        add("valve_fault.kind", kinds if isinstance(kinds, (list, dict)) else [kinds],
            number=False, choices=VALVE_FAULT_KINDS)
        add("valve_fault.start_s", vf.get("start_s", 0.0))

    vary = g.get("vary", {})
    if not isinstance(vary, dict):
        raise SpecError("expected a table of \"dotted.key\" = distribution", source, f"{where}.vary")
    for key, raw in vary.items():
        numeric = _scenario_key_numeric(base, key)
        if numeric is None:
            raise SpecError(f"no such key in the base scenario {ref!r} nor in the scenario format "
                            "(docs/scenarios.md)", source, f"{where}.vary.{key}")
        add(f"vary.{key}", raw, number=numeric)

    grid_keys = tuple(k for k, d in params.items() if d.grid is not None)
    if any(k.startswith(("sensor_fault.", "valve_fault.")) and not k.endswith(".count") for k in grid_keys):
        bad = next(k for k in grid_keys if k.startswith(("sensor_fault.", "valve_fault.")) and not k.endswith(".count"))
        raise SpecError("each is only allowed for the fault count; fault details are drawn per fault",
                        source, f"{where}.{bad}")
    group = Group(name=name, scenario=scenario_ref, cases=cases, duration_s=duration, timeout_s=timeout,
                  has_leak=leak is not None, has_sensor_fault=sf is not None, has_valve_fault=vf is not None,
                  params=params, modules=modules, valves=valves, grid_keys=grid_keys)
    _trial_build(group, source, where)
    return group


def _scenario_key_numeric(base: Mapping[str, Any], key: str) -> bool | None:
    """Whether a ``vary`` key holds a number (True/False), or None when the key exists neither in
    the base scenario nor in the scenario format (a key the base leaves at its default)."""
    from ...sim import scenario as sc

    try:
        current = get_dotted(base, key)
        return isinstance(current, (int, float)) and not isinstance(current, bool)
    except KeyError:
        pass
    parts = key.split(".")
    fields: tuple[Any, ...] | None = None
    if len(parts) == 1:
        fields = sc.TOP_FIELDS
    elif parts[0] in sc.SECTIONS:
        section_fields, is_list = sc.SECTIONS[parts[0]]
        if not is_list and len(parts) == 2:
            fields = section_fields
        elif is_list and len(parts) == 3 and parts[1].isdigit():
            try:
                get_dotted(base, ".".join(parts[:2]))
            except KeyError:
                return None
            fields = section_fields
    for f in fields or ():
        if f.key == parts[-1]:
            return f.kind in ("float", "int")
    return None


def _trial_build(group: Group, source: str, where: str) -> None:
    """Build and validate the first case's scenario now, so a spec that makes invalid scenarios
    fails at load time with its key, not in every worker."""
    from ...sim.errors import SimError
    from ...sim.scenario import scenario_from_dict

    probe = Spec(name="probe", description="", seed=0, source=source, groups=(group,), fdir_params=None,
                 digest="")
    case = draw_case(probe, group, 0)
    try:
        scenario_from_dict(build_scenario_dict(case), f"{source} ({where}, case 0)")
    except SimError as exc:
        raise SpecError(f"makes an invalid scenario: {exc}", source, where) from exc


def _parse_count(table: Mapping[str, Any], prefix: str, add: Any, params: dict[str, Dist], source: str,
                 where: str) -> None:
    if "count" in table and "probability" in table:
        raise SpecError("give count or probability, not both", source, f"{where}.{prefix}.probability")
    if "probability" in table:
        p = _number(table, "probability", source, f"{where}.{prefix}.", minimum=0.0)
        if p > 1:
            raise SpecError(f"expected a probability in [0, 1], got {p}", source, f"{where}.{prefix}.probability")
        params[f"{prefix}.probability"] = Const(float(p))
    else:
        add(f"{prefix}.count", table.get("count", 1))
        d = params[f"{prefix}.count"]
        vals = d.grid if d.grid is not None else (d.values if isinstance(d, Choice) else
                                                  (d.value,) if isinstance(d, Const) else (-1,))
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in vals):
            raise SpecError("expected whole numbers >= 0 (choice, each or a constant)", source,
                            f"{where}.{prefix}.count")


def _check_positive(d: Dist, source: str, where: str) -> None:
    vals: tuple[Any, ...]
    if isinstance(d, (Uniform, LogUniform)):
        vals = (d.lo,)
    elif isinstance(d, (Choice, Each)):
        vals = d.values
    else:
        vals = (d.value,)  # type: ignore[attr-defined]
    if any(v <= 0 for v in vals):
        raise SpecError("expected values > 0", source, where)


# --------------------------------------------------------------------------------------------
# drawing


def get_dotted(data: Any, key: str) -> Any:
    """Value at a dotted key (``thermal.amplitude_k``, ``modules.2.volume_m3``); KeyError naming
    the first missing part."""
    cur = data
    for part in key.split("."):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(part)
    return cur


def _rng(seed: int, group: str, index: int, param: str) -> np.random.Generator:
    """A generator for one parameter of one case: independent of every other draw."""
    key = (zlib.crc32(group.encode()), index, zlib.crc32(param.encode()))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def draw_case(spec: Spec, group: Group, index: int) -> dict[str, Any]:
    """The parameters of case ``index`` of ``group``: a plain, JSON-serialisable dict.

    Keys: ``id``, ``group``, ``index``, ``campaign``, ``scenario`` (preset name or path),
    ``seed``, ``duration_s`` (None: the scenario's), ``timeout_s``, ``fdir_params``, ``leak``
    (None, or module, diameter_m, cd, start_s), ``sensor_faults`` and ``valve_faults`` (None: keep
    the base scenario's; else lists in the scenario format), ``vary`` (dotted key -> value)."""
    if not 0 <= index < group.size:
        raise IndexError(f"case {index} out of range for group {group.name!r} of {group.size}")
    point, _repeat = index % group.grid_size, index // group.grid_size
    fixed: dict[str, Any] = {}
    for k in reversed(group.grid_keys):  # last grid key varies fastest
        values = group.params[k].grid or []
        point, j = divmod(point, len(values))
        fixed[k] = _plain(values[j])

    def value(path: str, slot: str | None = None) -> Any:
        if path in fixed:
            return fixed[path]
        return group.params[path].draw(_rng(spec.seed, group.name, index, slot or path))

    def count(prefix: str) -> int:
        if f"{prefix}.probability" in group.params:
            p = float(cast(Const, group.params[f"{prefix}.probability"]).value)
            return int(_rng(spec.seed, group.name, index, f"{prefix}.present").random() < p)
        return int(value(f"{prefix}.count"))

    case: dict[str, Any] = {
        "id": case_id(group.name, index),
        "group": group.name,
        "index": index,
        "campaign": spec.name,
        "scenario": group.scenario,
        "seed": int(_rng(spec.seed, group.name, index, "seed").integers(1, _SEED_MAX)),
        "duration_s": group.duration_s,
        "timeout_s": group.timeout_s,
        "fdir_params": spec.fdir_params,
        "leak": None,
        "sensor_faults": None,
        "valve_faults": None,
        "vary": {},
    }
    if group.has_leak:
        case["leak"] = {
            "module": value("leak.module"),
            "diameter_m": float(value("leak.diameter_mm")) * 1e-3,
            "cd": float(value("leak.cd")),
            "start_s": float(value("leak.start_s")),
        }
    if group.has_sensor_fault:
        faults = []
        for j in range(count("sensor_fault")):
            slot = f"sensor_fault[{j}]"
            module = value("sensor_fault.module", f"{slot}.module")
            if module == "leak":
                module = case["leak"]["module"]
            kind = value("sensor_fault.kind", f"{slot}.kind")
            channel = int(_rng(spec.seed, group.name, index, f"{slot}.channel").integers(1, 4))
            fault = {
                "sensor": f"{module}.p{channel}",
                "kind": kind,
                "start_s": float(value("sensor_fault.start_s", f"{slot}.start_s")),
                "magnitude": float(value(f"sensor_fault.magnitude.{kind}", f"{slot}.magnitude")),
            }
            if "sensor_fault.duration_s" in group.params:
                fault["duration_s"] = float(value("sensor_fault.duration_s", f"{slot}.duration_s"))
            faults.append(fault)
        case["sensor_faults"] = faults
    if group.has_valve_fault:
        faults = []
        for j in range(count("valve_fault")):
            slot = f"valve_fault[{j}]"
            faults.append({
                "valve": value("valve_fault.valve", f"{slot}.valve"),
                "kind": value("valve_fault.kind", f"{slot}.kind"),
                "start_s": float(value("valve_fault.start_s", f"{slot}.start_s")),
            })
        case["valve_faults"] = faults
    for path in group.params:
        if path.startswith("vary."):
            case["vary"][path[5:]] = value(path)
    return case


def iter_cases(spec: Spec) -> Iterator[dict[str, Any]]:
    """Every case of the spec, groups in order, cases by index."""
    for group in spec.groups:
        for i in range(group.size):
            yield draw_case(spec, group, i)
