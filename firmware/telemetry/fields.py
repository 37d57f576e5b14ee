"""Helpers to annotate construct declarations with units, and to derive struct codecs from them.

Every binary layout of the telemetry is declared once with construct (packets.py). The per-cycle
and bulk paths need ``struct.Struct`` formats instead (construct costs about 100 us per packet,
struct 1-2 us, DESIGN.md); :func:`flatten` walks a declaration and yields the equivalent struct
codes, so the fast codecs are computed from the declaration and never typed by hand a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import construct as cs


def field(name: str, subcon: cs.Construct, unit: str = "", doc: str = "") -> cs.Renamed:
    """``name / subcon`` with a unit ("Pa", "K", "s", "" for a count or code) and a description.

    The unit and description are what ``hullwatch dictionary`` exports for the field.
    """
    renamed = cs.Renamed(subcon, newname=name, newdocs=doc)
    renamed.unit = unit  # construct objects accept attributes; the dictionary reads it back
    return renamed


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


def _bitstruct_fields(struct: cs.Struct) -> tuple[tuple[tuple[str, int, int, Any], ...], int]:
    widths: list[tuple[str, int, Any]] = []
    for sub in struct.subcons:
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

    ``counts`` gives the values of the length fields that ``Array(this.<name>, ...)`` refers to.
    Raises TypeError for a construct that has no fixed struct equivalent (strings, Switch...).
    """
    counts = counts or {}
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
    import struct

    offsets = {}
    position = 0
    for f in fields:
        offsets[f.path] = position
        position += struct.calcsize(">" + (f"{f.count}{f.code}" if f.count != 1 or f.code == "s" else f.code))
    return offsets


def describe(con: cs.Construct) -> str:
    """A short type name for the dictionary: ``u16``, ``f64``, ``u8[n_pressure]``, ``ascii[16]``..."""
    while isinstance(con, (cs.Renamed, cs.Rebuild, cs.Const)):
        con = con.subcon
    if isinstance(con, cs.FormatField):
        code = con.fmtstr[1:]
        return {
            "B": "u8", "H": "u16", "I": "u32", "L": "u32", "Q": "u64", "b": "i8", "h": "i16", "i": "i32", "l": "i32",
            "q": "i64", "f": "f32", "d": "f64",
        }[code]
    if isinstance(con, cs.Array):
        count = con.count
        count_s = str(count).replace("this['", "").replace("']", "") if callable(count) else str(count)
        return f"{describe(con.subcon)}[{count_s}]"
    if isinstance(con, cs.BitsInteger):
        return f"u{con.length} (bits)"
    if con is cs.Flag:
        return "bool (1 bit)"
    if isinstance(con, cs.StringEncoded):
        inner = con.subcon
        if isinstance(inner, cs.FixedSized):
            return f"{con.encoding}[{inner.length}] (NUL padded)"
        if isinstance(inner, cs.Prefixed):
            return f"{con.encoding} text, u16 byte length prefix"
        return f"{con.encoding} text"
    if isinstance(con, cs.Adapter):
        return describe(con.subcon)
    if isinstance(con, cs.Struct):
        return "struct"
    if isinstance(con, cs.Transformed):
        return f"u{con.sizeof() * 8} bit fields"
    return type(con).__name__


def subfields(con: cs.Construct) -> list[cs.Renamed]:
    """The named sub-fields of a Struct, BitStruct, or an Array of Structs (else empty)."""
    while isinstance(con, (cs.Renamed, cs.Array, cs.Transformed)) and not isinstance(con, cs.Struct):
        con = con.subcon
    if isinstance(con, cs.Struct):
        return [s for s in con.subcons if isinstance(s, cs.Renamed)]
    return []
