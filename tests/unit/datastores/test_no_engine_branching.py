"""Nothing outside kubetrove.datastores branches on an engine's name (ARCHITECTURE.md).

Engine knowledge lives in the strategies; everything else asks the registry. The check parses every
module of the operator (AST, so comments and docstrings that mention an engine are fine) and flags:
- a string constant that IS an engine name (``"mysql"``, ``"PostgreSQL"``), as in
  ``if spec.datastore.type == "mysql"`` or ``{"mongodb": ...}``;
- an ``Engine.<MEMBER>`` attribute, as in ``if engine is Engine.CASSANDRA``.
Allowed: ``kubetrove/datastores/`` (the strategies), ``kubetrove/api/common.py`` (the Engine enum
itself) and ``kubetrove/agent/`` (the agent has its own per-engine drivers, chosen by engine name).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kubetrove
from kubetrove.api.common import Engine

PACKAGE = Path(kubetrove.__file__).parent
ALLOWED = ("datastores/", "api/common.py", "agent/")
NAMES = {e.value for e in Engine}


def engine_references(source: str) -> list[tuple[int, str]]:
    """(line, what) of every engine-name constant or Engine member in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in NAMES:
            found.append((node.lineno, repr(node.value)))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Engine"
            and node.attr in Engine.__members__
        ):
            found.append((node.lineno, f"Engine.{node.attr}"))
    return found


def operator_modules() -> list[Path]:
    """Every module of the package outside the allowed places."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not relative.startswith(ALLOWED):
            modules.append(path)
    return modules


def test_the_scan_covers_the_operator() -> None:
    scanned = {p.relative_to(PACKAGE).as_posix() for p in operator_modules()}
    assert "api/specs.py" in scanned and "render/__init__.py" in scanned
    assert not any(name.startswith("datastores/") for name in scanned)


@pytest.mark.parametrize(
    "source",
    [
        'if spec.datastore.type == "mysql":\n    pass\n',
        'PORTS = {"PostgreSQL": 5432}\n',
        "if engine is Engine.CASSANDRA:\n    pass\n",
        'x = "mongodb" if a else "mariadb"\n',
    ],
)
def test_the_scan_catches_branching(source: str) -> None:
    assert engine_references(source)


def test_the_scan_ignores_prose_and_the_registry_lookup() -> None:
    source = (
        '"""Works for mysql and mariadb alike."""\n# postgresql too\nstore = REGISTRY[spec.datastore.type]\n'
    )
    assert engine_references(source) == []


def test_nothing_outside_datastores_branches_on_engine_names() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {what}"
        for path in operator_modules()
        for line, what in engine_references(path.read_text())
    ]
    assert offenders == [], "engine-specific code belongs in kubetrove.datastores:\n" + "\n".join(offenders)
