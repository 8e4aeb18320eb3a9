"""Printing: ``-o table`` (kubectl-like columns), ``json`` and ``yaml`` (pure text building)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns with upper-case headers, as kubectl prints them."""
    cells = [[c.upper() for c in columns]] + [
        ["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def render(data: Any, fmt: str, columns: Sequence[str] | None = None) -> str:
    """``data`` as ``fmt``; a table needs rows (a list of dicts, or one dict as key/value lines)."""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()
    if isinstance(data, list):
        return table(data, columns or (list(data[0]) if data else []))
    return key_values(data)


def key_values(data: Mapping[str, Any], indent: str = "") -> str:
    """A dict as ``Key: value`` lines, nested dicts and lists indented (``kubectl describe``-like)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines.append(f"{indent}{key}:" + ("" if value else " <none>"))
            if value:
                lines.append(key_values(value, indent + "  "))
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:" + ("" if value else " <none>"))
            for item in value:
                if isinstance(item, Mapping):
                    lines.append(
                        f"{indent}  - " + ", ".join(f"{k}={v}" for k, v in item.items() if v is not None)
                    )
                else:
                    lines.append(f"{indent}  - {item}")
        else:
            lines.append(f"{indent}{key}: {'<none>' if value is None else value}")
    return "\n".join(lines)
