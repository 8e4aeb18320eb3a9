"""Nothing outside kubetrove.datastores branches on an engine's name (ARCHITECTURE.md).

Engine knowledge lives in the strategies; everything else asks the registry. The check parses every
module of the operator (AST, so comments and docstrings that mention an engine are fine) and flags:
- a string constant that IS an engine name (``"mysql"``, ``"PostgreSQL"``), as in
  ``if spec.datastore.type == "mysql"`` or ``{"mongodb": ...}``;
- an ``Engine.<MEMBER>`` attribute, as in ``if engine is Engine.CASSANDRA``.
Allowed: ``kubetrove/datastores/`` (the strategies), ``kubetrove/api/common.py`` (the Engine enum
itself), ``kubetrove/agent/engines/`` (the agent's engine bundles) and the body of the agent's wire enum
``class Engine`` in ``kubetrove/agent/protocol.py``. The rest of the agent asks its bundle registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kubetrove
from kubetrove.api.common import Engine

PACKAGE = Path(kubetrove.__file__).parent
ALLOWED = ("datastores/", "api/common.py", "agent/engines/")
ENUMS = {"agent/protocol.py": "Engine"}  # module -> the class whose body defines the engine names
NAMES = {e.value for e in Engine}


def engine_references(source: str, enum_class: str | None = None) -> list[tuple[int, str]]:
    """(line, what) of every engine-name constant or Engine member in ``source``.

    ``enum_class``: the name of a class in ``source`` that defines the engine enum; its body is skipped.
    """
    found = []
    tree = ast.parse(source)
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == enum_class
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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
    assert {"agent/server.py", "agent/names.py", "agent/protocol.py", "agent/backup/runner.py"} <= scanned
    assert not any(name.startswith("agent/engines/") for name in scanned)


def test_only_the_enum_body_is_skipped() -> None:
    source = 'class Engine:\n    MYSQL = "mysql"\n\nDEFAULT = "mysql"\n'
    assert engine_references(source, "Engine") == [(4, "'mysql'")]


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
        for line, what in engine_references(path.read_text(), ENUMS.get(path.relative_to(PACKAGE).as_posix()))
    ]
    assert offenders == [], (
        "engine-specific code belongs in kubetrove.datastores (agent: kubetrove.agent.engines):\n"
        + "\n".join(offenders)
    )
