"""The codec compiler: fixed-layout ``struct`` codecs derived from construct declarations.

Every binary format of hullwatch (the board wire protocol in :mod:`hullwatch.hal.wire`, the
telemetry packets in ``hullwatch.firmware.telemetry.packets``) is declared once with construct.
construct parses a packet in about 100 us; the per-cycle paths need ``struct`` (1-2 us). So the
struct formats are compiled from the declarations, never typed by hand a second time:

- :func:`flatten` walks a declaration and yields one :class:`FlatField` per struct code (its dotted
  path, code, count, packed bit fields, constant);
- :func:`struct_format` and :func:`field_offsets` turn those into a format string and byte offsets;
- :func:`compile_struct` gives the (cached) ``struct.Struct`` of a declaration for given array
  lengths. The ground tools derive numpy dtypes from the same fields.

Supported: Struct, Renamed, Const, Rebuild, Adapter, big-endian FormatField, BitStruct (as one
integer with its sub-fields), PaddedString, Array with a fixed or ``this.<name>`` count, and
PrefixedArray (its length prefix, then the items) with the item count given by its field name.
A construct with no fixed layout (GreedyBytes, PascalString, Switch, Optional) raises TypeError.
Pure functions: no I/O, importable by every layer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Mapping

import construct as cs


@dataclass(frozen=True, slots=True)
class FlatField:
    """One struct code derived from a declaration.

    ``path`` is the dotted field name, ``code`` one struct format code (``"H"``, ``"d"``...),
    ``count`` how many consecutive values of it (an Array), ``bits`` the ``(name, shift, width,
    const)`` sub-fields when the value is a packed bit field (a BitStruct; ``const`` is None unless
    the sub-field is a Const), ``const`` a fixed value.
    """

    path: str
    code: str
    count: int = 1
    bits: tuple[tuple[str, int, int, Any], ...] = ()
    const: Any = None
    is_array: bool = False


_BIT_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}


def _bitstruct_fields(bit_struct: cs.Struct) -> tuple[tuple[tuple[str, int, int, Any], ...], int]:
    widths: list[tuple[str, int, Any]] = []
    for sub in bit_struct.subcons:
        name = sub.name
        inner = sub.subcon if isinstance(sub, cs.Renamed) else sub
        const = None
        while isinstance(inner, (cs.Renamed, cs.Rebuild, cs.Adapter, cs.Const)) and not isinstance(inner, cs.BitsInteger):
            if isinstance(inner, cs.Const):
                const = inner.value
            inner = inner.subcon
        if isinstance(inner, cs.BitsInteger):
            width = inner.length
        elif inner is cs.Flag:
            width = 1
        else:
            raise TypeError(f"bit field {name!r}: cannot derive a struct code from {inner!r}")
        widths.append((name, width, const))
    total = sum(w for _, w, _ in widths)
    out = []
    shift = total
    for name, width, const in widths:
        shift -= width
        out.append((name, shift, width, const))
    return tuple(out), total


def flatten(con: cs.Construct, counts: Mapping[str, int] | None = None, prefix: str = "") -> list[FlatField]:
    """Struct codes (big-endian) equivalent to the fixed-size declaration ``con``.

    ``counts`` gives the values of the length fields that ``Array(this.<name>, ...)`` refers to,
    and the item count of each ``PrefixedArray`` by its field name (``{"channels": 12}``).
    Raises TypeError for a construct that has no fixed struct equivalent (strings, Switch...).
    """
    counts = counts or {}
    if isinstance(con, cs.FocusedSeq) and [s.name for s in con.subcons] == ["count", "items"]:  # PrefixedArray
        leaf = prefix.rpartition(".")[2]
        if leaf not in counts:
            raise TypeError(f"{prefix}: a PrefixedArray needs its item count in counts[{leaf!r}]")
        inner = {**counts, "count": counts[leaf]}
        # paths: "<name>.count", then the items as "<name>[i]..." (the FocusedSeq's own names dropped)
        return flatten(con.subcons[0].subcon, inner, f"{prefix}.count") + flatten(con.subcons[1].subcon, inner, prefix)
    if isinstance(con, cs.Renamed):
        name = f"{prefix}.{con.name}" if prefix else con.name
        return flatten(con.subcon, counts, name)
    if isinstance(con, cs.Struct):
        out: list[FlatField] = []
        for sub in con.subcons:
            out.extend(flatten(sub, counts, prefix))
        return out
    if isinstance(con, cs.Transformed) and isinstance(con.subcon, cs.Struct):  # BitStruct
        bits, total = _bitstruct_fields(con.subcon)
        if total not in _BIT_CODES:
            raise TypeError(f"{prefix}: bit struct of {total} bits has no struct code")
        return [FlatField(prefix, _BIT_CODES[total], 1, bits)]
    if con is cs.Terminated:
        return []
    if isinstance(con, cs.Const):
        [inner] = flatten(con.subcon, counts, prefix)
        return [FlatField(inner.path, inner.code, inner.count, inner.bits, con.value)]
    if isinstance(con, cs.StringEncoded) and isinstance(con.subcon, cs.FixedSized):  # PaddedString
        return [FlatField(prefix, "s", con.subcon.length)]
    if isinstance(con, (cs.Rebuild, cs.Adapter)):
        return flatten(con.subcon, counts, prefix)
    if isinstance(con, cs.FormatField):
        if con.fmtstr[0] not in ">!":
            raise TypeError(f"{prefix}: {con.fmtstr!r} is not big-endian")
        return [FlatField(prefix, con.fmtstr[1:])]
    if isinstance(con, cs.Array):
        count = con.count(counts) if callable(con.count) else con.count
        inner = flatten(con.subcon, counts, prefix)
        if len(inner) == 1 and not inner[0].bits:
            return [FlatField(prefix, inner[0].code, int(count), is_array=True)]
        out = []
        for i in range(int(count)):
            out.extend(flatten(con.subcon, counts, f"{prefix}[{i}]"))
        return out
    raise TypeError(f"{prefix or con!r}: cannot derive a struct code from {type(con).__name__}")


def struct_format(fields: list[FlatField]) -> str:
    """The ``struct`` format string (big-endian) for flattened fields."""
    return ">" + "".join(f"{f.count}{f.code}" if f.count != 1 or f.code == "s" else f.code for f in fields)


def field_offsets(fields: list[FlatField]) -> dict[str, int]:
    """Byte offset of each flattened field (big-endian, no padding)."""
    offsets = {}
    position = 0
    for f in fields:
        offsets[f.path] = position
        position += struct.calcsize(">" + (f"{f.count}{f.code}" if f.count != 1 or f.code == "s" else f.code))
    return offsets


_COMPILED: dict[str, struct.Struct] = {}


def compile_fields(fields: list[FlatField]) -> struct.Struct:
    """The ``struct.Struct`` of flattened fields (cached by format: per-cycle layouts repeat)."""
    fmt = struct_format(fields)
    compiled = _COMPILED.get(fmt)
    if compiled is None:
        if len(_COMPILED) > 512:  # a bound: array lengths vary with the layout, rarely per call
            _COMPILED.clear()
        compiled = _COMPILED[fmt] = struct.Struct(fmt)
    return compiled


def compile_struct(con: cs.Construct, counts: Mapping[str, int] | None = None) -> struct.Struct:
    """The ``struct.Struct`` equivalent to declaration ``con`` for these array lengths
    (:func:`flatten`). Raises TypeError for a construct with no fixed layout."""
    return compile_fields(flatten(con, counts))
