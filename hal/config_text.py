"""A board configuration as text for people: a TOML source that reads back equal
(:func:`config_to_toml`) and the summary ``flash --dry-run`` and ``board-info`` print
(:func:`summary_lines`)."""

from __future__ import annotations

from .config_model import PHYSICAL_BOUNDS, REFERENCE_TEMPERATURE_K, BoardConfig

def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_to_toml(config: BoardConfig, header: str = "") -> str:
    """Render ``config`` as a TOML source that :func:`config_from_dict` reads back equal (except
    the generation, which a source does not carry). ``header`` becomes leading comment lines."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [
        f"board_id = {_toml_str(config.board_id)}",
        f"sample_rate_hz = {config.sample_rate_hz}",
        f"oversampling = {config.oversampling}",
        f"hil_allowed = {'true' if config.hil_allowed else 'false'}",
    ]
    for m in config.modules:
        lines += ["", "[[modules]]", f"name = {_toml_str(m.name)}", f"volume_m3 = {m.volume_m3!r}"]
    for v in config.valves:
        ends = [v.module_a] + ([] if v.module_b is None else [v.module_b])
        lines += ["", "[[valves]]", f"id = {_toml_str(v.id)}", f"kind = \"{v.kind.name.lower()}\"",
                  "modules = [" + ", ".join(map(_toml_str, ends)) + "]",
                  f"actuation_timeout_s = {v.actuation_timeout_s!r}"]
    for c in config.channels:
        unit = PHYSICAL_BOUNDS[c.kind][2]
        lines += ["", "[[channels]]", f"id = {_toml_str(c.id)}", f"kind = \"{c.kind.name.lower()}\"",
                  f"module = {_toml_str(c.module)}",
                  f"offset = {c.offset!r}  # {unit}",
                  f"gain = {c.gain!r}  # {unit} per count",
                  f"temp_coeff = {c.temp_coeff!r}  # {unit} per K from {REFERENCE_TEMPERATURE_K:g} K",
                  f"valid_min = {c.valid_min!r}  # {unit}",
                  f"valid_max = {c.valid_max!r}  # {unit}"]
    return "\n".join(lines) + "\n"


def summary_lines(config: BoardConfig, header: bool = True) -> list[str]:
    """Human-readable description of a configuration (used by ``flash --dry-run`` and
    ``board-info``): header fields (unless ``header`` is False), then the module, channel and
    valve tables."""
    out = [
        f"board id:        {config.board_id}",
        f"format version:  {config.format_version}",
        f"generation:      {config.generation}",
        f"sample rate:     {config.sample_rate_hz} Hz, oversampling x{config.oversampling}",
        f"HIL allowed:     {'yes' if config.hil_allowed else 'no'}",
    ] if header else []
    out += [
        f"modules ({len(config.modules)}):   "
        + ", ".join(f"{m.name} {m.volume_m3:g} m^3" for m in config.modules),
        f"channels ({len(config.channels)}):",
        f"  {'id':<24} {'kind':<11} {'module':<12} {'offset':>10} {'gain':>11} {'tc/K':>8} "
        f"{'valid range':>22}",
    ]
    for c in config.channels:
        unit = PHYSICAL_BOUNDS[c.kind][2]
        out.append(f"  {c.id:<24} {c.kind.name.lower():<11} {c.module:<12} {c.offset:>10.6g} "
                   f"{c.gain:>11.6g} {c.temp_coeff:>8.4g} "
                   f"{f'{c.valid_min:g}..{c.valid_max:g} {unit}':>22}")
    out.append(f"valves ({len(config.valves)}):")
    out.append(f"  {'id':<24} {'kind':<8} {'modules':<28} {'timeout':>8}")
    for v in config.valves:
        ends = v.module_a if v.module_b is None else f"{v.module_a} <-> {v.module_b}"
        out.append(f"  {v.id:<24} {v.kind.name.lower():<8} {ends:<28} {v.actuation_timeout_s:>7g}s")
    return out
