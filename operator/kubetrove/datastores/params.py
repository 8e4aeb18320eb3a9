"""Checking parameter values against an engine's catalog: shared by every engine module.

Invariants (relied on by render and by the config renderers):

- A value that passes ``check`` is safe to write into a config file unquoted or inside quotes: strings
  may not contain quotes, backslashes, ``#`` or line breaks, so a parameter can never inject another
  setting (``max_connections = "10\\nlocal_infile = ON"``).
- Messages follow one shape, ready for a status condition:
  ``parameter <name>=<value> for <engine>: expected <what>`` (``<what>`` names the allowed range).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubetrove.api.common import Engine
from kubetrove.datastores.base import ParameterSpec, ParamType

# Characters a STRING value may contain: enough for paths, lists ("a,b"), host names and sizes, and
# nothing that could end a quoted or unquoted value in any of our config syntaxes. Always fullmatch:
# with match() and "$", a trailing newline would slip through ("0\n" matches r"^[0-9]+$").
_SAFE_STRING = re.compile(r"[A-Za-z0-9_.,:/@+\-= *]{1,256}", re.ASCII)
# Bounded length: int() of a 5000-digit string raises (CPython caps str->int conversion).
_INT = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]{1,30}\.?[0-9]{0,30}|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?", re.ASCII)


@dataclass(frozen=True)
class SizeSyntax:
    """How an engine spells byte sizes: unit suffixes (exact spelling) and their multipliers."""

    units: Mapping[str, int]  # suffix -> bytes, e.g. {"K": 1024, "M": 1024**2}
    bare_allowed: bool = True  # a plain number means bytes
    case_sensitive: bool = True

    def parse(self, value: str) -> int | None:
        """Bytes of ``value``, or None when it is not a size in this syntax."""
        m = re.fullmatch(r"([0-9]{1,30})([A-Za-z]{0,4})", value, re.ASCII)
        if m is None:
            return None
        number, suffix = int(m.group(1)), m.group(2)
        if not suffix:
            return number if self.bare_allowed else None
        for unit, factor in self.units.items():
            if suffix == unit or (not self.case_sensitive and suffix.lower() == unit.lower()):
                return number * factor
        return None

    def format(self, n: float) -> str:
        """``n`` bytes with the largest unit that divides it exactly (``1073741824`` -> ``1G``)."""
        whole = int(n)
        for unit, factor in sorted(self.units.items(), key=lambda kv: -kv[1]):
            if whole >= factor and whole % factor == 0:
                return f"{whole // factor}{unit}"
        return str(whole)

    def describe(self) -> str:
        """The accepted spellings, for messages."""
        units = ", ".join(sorted(self.units, key=lambda u: self.units[u]))
        if self.bare_allowed:
            return f"a size (bytes, or a number with unit {units})"
        return f"a size with unit {units}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _bounds(spec: ParameterSpec, sizes: SizeSyntax | None = None) -> str:
    def show(x: float) -> str:
        return sizes.format(x) if sizes is not None else _number(x)

    if spec.minimum is not None and spec.maximum is not None:
        return f" between {show(spec.minimum)} and {show(spec.maximum)}"
    if spec.minimum is not None:
        return f" of at least {show(spec.minimum)}"
    if spec.maximum is not None:
        return f" of at most {show(spec.maximum)}"
    return ""


def _in_range(spec: ParameterSpec, x: float) -> bool:
    return (spec.minimum is None or x >= spec.minimum) and (spec.maximum is None or x <= spec.maximum)


def expectation(spec: ParameterSpec, sizes: SizeSyntax | None = None) -> str:
    """What ``spec`` accepts, in words (the tail of every message)."""
    if spec.type is ParamType.INT:
        return "an integer" + _bounds(spec)
    if spec.type is ParamType.FLOAT:
        return "a number" + _bounds(spec)
    if spec.type in (ParamType.BOOL, ParamType.ENUM):
        return "one of " + ", ".join(spec.allowed)
    if spec.type is ParamType.SIZE:
        assert sizes is not None, f"{spec.name}: SIZE parameters need the engine's SizeSyntax"
        return sizes.describe() + _bounds(spec, sizes)
    return "a string of letters, digits and _.,:/@+-= * (no quotes, # or line breaks)"


def is_valid(spec: ParameterSpec, value: str, sizes: SizeSyntax | None = None) -> bool:
    """Whether ``value`` is acceptable for ``spec`` (type, range, allowed values)."""
    if spec.type is ParamType.INT:
        return bool(_INT.fullmatch(value)) and _in_range(spec, int(value))
    if spec.type is ParamType.FLOAT:
        return bool(_FLOAT.fullmatch(value)) and math.isfinite(float(value)) and _in_range(spec, float(value))
    if spec.type in (ParamType.BOOL, ParamType.ENUM):
        return value in spec.allowed
    if spec.type is ParamType.SIZE:
        assert sizes is not None, f"{spec.name}: SIZE parameters need the engine's SizeSyntax"
        size = sizes.parse(value)
        return size is not None and _in_range(spec, size)
    return bool(_SAFE_STRING.fullmatch(value))


def _shown(value: str) -> str:
    # Messages end up in conditions and Events: no raw control characters, no novel-length values.
    shown = value if value.isprintable() else repr(value)
    return shown if len(shown) <= 64 else shown[:61] + "..."


def validate(
    engine: Engine,
    catalog: Mapping[str, ParameterSpec],
    parameters: Mapping[str, str],
    sizes: SizeSyntax | None = None,
    units: Mapping[str, str] | None = None,
) -> list[str]:
    """One message per unknown name or bad value, in name order (deterministic conditions).

    ``units`` names the unit of plain-number parameters (``{"statement_timeout": "ms"}``) for messages.
    """
    problems: list[str] = []
    for name in sorted(parameters):
        value = parameters[name]
        spec = catalog.get(name)
        if spec is None:
            supported = ", ".join(sorted(catalog))
            problems.append(
                f"parameter {_shown(name)} for {engine}: unknown parameter (supported: {supported})"
            )
        elif not is_valid(spec, value, sizes):
            unit = f" ({units[name]})" if units and name in units else ""
            problems.append(
                f"parameter {name}={_shown(value)} for {engine}: expected {expectation(spec, sizes)}{unit}"
            )
    return problems


def catalog(*specs: ParameterSpec) -> dict[str, ParameterSpec]:
    """A catalog keyed by name, refusing duplicates (a typo'd copy would silently shadow an entry)."""
    out: dict[str, ParameterSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"duplicate catalog entry {spec.name}")
        out[spec.name] = spec
    return out


def merged(*parts: Iterable[ParameterSpec]) -> dict[str, ParameterSpec]:
    """One catalog from several lists (e.g. the MySQL-family common part plus one flavour's own)."""
    return catalog(*(spec for part in parts for spec in part))
