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

from ...firmware.errors import ParameterError
from ...firmware.fdir.params import params_from_dict
from . import faults
from .case import build_scenario_dict
from .dist import (  # noqa: F401 (public names, also imported from here)
    Choice,
    Const,
    Dist,
    Each,
    LogUniform,
    SpecError,
    Uniform,
    _plain,
    parse_dist,
)
from .faults import DEFAULT_MAGNITUDES, SENSOR_FAULT_KINDS  # noqa: F401 (public names)

VALVE_FAULT_KINDS = ("stuck_open", "stuck_closed", "feedback_mismatch")
#: Which acceptance targets a spec's report checks (``targets`` key): see targets.py.
TARGET_PROFILES = ("acceptance", "robustness")

_SEED_MAX = 2**31 - 1


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
    has_blind_module: bool = False
    has_hatch_ops: bool = False
    #: per module of the base scenario: (name, pressure sensors, temperature sensors,
    #: initial pressure Pa, initial temperature K)
    module_info: tuple[tuple[str, int, int, float, float], ...] = ()
    #: connection ids of the base scenario that are open at the start
    open_valves: tuple[str, ...] = ()
    #: FDIR parameters of this group's cases, in the parameter file's format ({section: {key:
    #: value}}), laid over the spec's ``fdir_params`` file (or the defaults)
    fdir: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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
    targets: str = "acceptance"  #: the report's target profile (TARGET_PROFILES)

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


_TOP_KEYS = {"name", "description", "seed", "timeout_s", "fdir_params", "groups", "targets"}
_GROUP_KEYS = {"name", "scenario", "cases", "duration_s", "timeout_s", "leak", "sensor_fault",
               "valve_fault", "blind_module", "hatch_ops", "vary", "fdir"}
_LEAK_KEYS = {"diameter_mm", "rate_kg_day", "module", "cd", "start_s"}
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
    targets = data.get("targets", "acceptance")
    if targets not in TARGET_PROFILES:
        raise SpecError(f"expected one of {', '.join(TARGET_PROFILES)}, got {targets!r}", source, "targets")
    if digest is None:
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return Spec(name=name, description=str(data.get("description", "")), seed=int(seed), source=source,
                groups=tuple(groups), fdir_params=fdir, digest=digest, targets=targets)


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
        if ("diameter_mm" in leak) == ("rate_kg_day" in leak):
            raise SpecError("expected exactly one of diameter_mm (hole diameters in mm) and "
                            "rate_kg_day (leak rates in kg/day)", source, f"{where}.leak.diameter_mm")
        size_key = "diameter_mm" if "diameter_mm" in leak else "rate_kg_day"
        add(f"leak.{size_key}", leak[size_key])
        add("leak.module", leak.get("module", "any"), number=False, choices=modules, any_values=modules)
        add("leak.cd", leak.get("cd", 0.7))
        add("leak.start_s", leak.get("start_s", 0.0))
        _check_positive(params[f"leak.{size_key}"], source, f"{where}.leak.{size_key}")
        _check_positive(params["leak.cd"], source, f"{where}.leak.cd")

    sf = _sub_table(g, "sensor_fault", faults.SF_KEYS, where, source)
    if sf is not None:
        _parse_count(sf, "sensor_fault", add, params, source, where)
        faults.parse_sensor_fault(sf, where, source, add, modules, leak is not None, SpecError, _unknown)
    bm = _sub_table(g, "blind_module", faults.BLIND_KEYS, where, source)
    if bm is not None:
        _parse_count(bm, "blind_module", add, params, source, where)
        faults.parse_blind_module(bm, where, source, add, modules, leak is not None, SpecError)
    ho = _sub_table(g, "hatch_ops", faults.HATCH_KEYS, where, source)
    if ho is not None:
        _parse_count(ho, "hatch_ops", add, params, source, where)
        faults.parse_hatch_ops(ho, where, source, add, valves, SpecError)

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

    fdir = _group_fdir(g, where, source)
    grid_keys = tuple(k for k, d in params.items() if d.grid is not None)
    per_item = ("sensor_fault.", "valve_fault.", "blind_module.", "hatch_ops.")
    bad = next((k for k in grid_keys if k.startswith(per_item) and not k.endswith(".count")), None)
    if bad is not None:
        raise SpecError("each is only allowed for the fault count; fault details are drawn per fault",
                        source, f"{where}.{bad}")
    group = Group(name=name, scenario=scenario_ref, cases=cases, duration_s=duration, timeout_s=timeout,
                  has_leak=leak is not None, has_sensor_fault=sf is not None, has_valve_fault=vf is not None,
                  params=params, modules=modules, valves=valves, grid_keys=grid_keys,
                  has_blind_module=bm is not None, has_hatch_ops=ho is not None,
                  module_info=_module_info(base),
                  open_valves=tuple(str(c["id"]) for c in base.get("connections", [])
                                    if isinstance(c, dict) and "id" in c and c.get("open", True)),
                  fdir=fdir)
    _trial_build(group, source, where)
    return group


def _group_fdir(g: Mapping[str, Any], where: str, source: str) -> dict[str, dict[str, Any]]:
    """The group's ``fdir`` table (FDIR parameters in the parameter file's format), checked
    now against the parameter rules (laid over the defaults; the spec's file is checked with
    it when a case runs)."""
    raw = g.get("fdir")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise SpecError("expected a table of parameter sections, e.g. [groups.fdir.slowleak]",
                        source, f"{where}.fdir")
    try:
        params_from_dict(raw, f"{source} ({where}.fdir)")
    except ParameterError as exc:
        raise SpecError(f"invalid FDIR parameter: {exc}", source, f"{where}.fdir") from exc
    return {str(k): dict(v) for k, v in raw.items()}


def _sub_table(g: Mapping[str, Any], key: str, allowed: set[str], where: str, source: str) -> Any:
    raw = g.get(key)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SpecError("expected a table", source, f"{where}.{key}")
    _unknown(raw, allowed, source, f"{where}.{key}")
    return raw


def _module_info(base: Mapping[str, Any]) -> tuple[tuple[str, int, int, float, float], ...]:
    sensors = faults.module_sensors(base)
    return tuple((str(m["name"]), *sensors[str(m["name"])], float(m.get("pressure_pa", 101325.0)),
                  float(m.get("temperature_k", 295.0)))
                 for m in base.get("modules", []) if isinstance(m, dict) and "name" in m)


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
    ``seed``, ``duration_s`` (None: the scenario's), ``timeout_s``, ``fdir_params``, ``fdir``
    (None, or the group's FDIR parameters laid over ``fdir_params``), ``leak``
    (None, or module, diameter_m, cd, start_s), ``sensor_faults`` and ``valve_faults`` (None: keep
    the base scenario's; else lists in the scenario format), ``blind_modules`` (None, or a list
    of module and start_s), ``hatch_ops`` (None, or crew hatch operations in the scenario
    format), ``vary`` (dotted key -> value); with a leak given by rate, ``leak_rate_kg_day``."""
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
        "fdir": {k: dict(v) for k, v in group.fdir.items()} or None,
        "leak": None,
        "sensor_faults": None,
        "valve_faults": None,
        "blind_modules": None,
        "hatch_ops": None,
        "vary": {},
    }
    info = {m[0]: m for m in group.module_info}
    if group.has_leak:
        module = value("leak.module")
        cd = float(value("leak.cd"))
        if "leak.rate_kg_day" in group.params:
            from ...sim.gas import hole_diameter

            rate = float(value("leak.rate_kg_day"))
            _, _, _, p_pa, t_k = info.get(module, (module, 3, 2, 101325.0, 295.0))
            diameter = hole_diameter(rate / 86400.0, cd, p_pa, t_k)
            case["leak_rate_kg_day"] = rate
        else:
            diameter = float(value("leak.diameter_mm")) * 1e-3
        case["leak"] = {"module": module, "diameter_m": diameter, "cd": cd,
                        "start_s": float(value("leak.start_s"))}
    leak_module = case["leak"]["module"] if case["leak"] else None
    sensors = {name: (n_p, n_t) for name, n_p, n_t, _, _ in group.module_info}
    if group.has_sensor_fault:
        def channel(slot: str, n: int) -> int:
            return int(_rng(spec.seed, group.name, index, slot).integers(1, n + 1))

        case["sensor_faults"] = faults.draw_sensor_faults(
            count("sensor_fault"), value, channel, leak_module,
            "sensor_fault.channels" in group.params, "sensor_fault.duration_s" in group.params,
            sensors)
    if group.has_blind_module:
        case["blind_modules"] = faults.draw_blind_modules(count("blind_module"), value, leak_module)
    if group.has_hatch_ops:
        case["hatch_ops"] = faults.draw_hatch_ops(
            count("hatch_ops"), value, {v: v in group.open_valves for v in group.valves},
            "hatch_ops.duration_s" in group.params)
    if group.has_valve_fault:
        valve_faults = []
        for j in range(count("valve_fault")):
            slot = f"valve_fault[{j}]"
            valve_faults.append({
                "valve": value("valve_fault.valve", f"{slot}.valve"),
                "kind": value("valve_fault.kind", f"{slot}.kind"),
                "start_s": float(value("valve_fault.start_s", f"{slot}.start_s")),
            })
        case["valve_faults"] = valve_faults
    for path in group.params:
        if path.startswith("vary."):
            case["vary"][path[5:]] = value(path)
    return case


def iter_cases(spec: Spec) -> Iterator[dict[str, Any]]:
    """Every case of the spec, groups in order, cases by index."""
    for group in spec.groups:
        for i in range(group.size):
            yield draw_case(spec, group, i)
