"""One composition root per process: only runtime/config.py reads the operator's environment (handlers/main.py
calls it once); the kubectl plugin, a process of the user's, reads its own once in cli/main.py."""

from __future__ import annotations

import re
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[3] / "operator" / "kubetrove"
READS_ENV = re.compile(r"\bos\.environ\b|\bgetenv\(|\bOperatorConfig\.from_env\(")


def test_the_environment_is_read_in_one_place() -> None:
    readers = sorted(
        str(p.relative_to(OPERATOR))
        for p in OPERATOR.rglob("*.py")
        if p.parts[len(OPERATOR.parts)] != "agent" and READS_ENV.search(p.read_text())
    )
    # config.py defines from_env (the one reader); main.py calls it, once, at start-up.
    assert readers == ["cli/main.py", "handlers/main.py", "runtime/config.py"]
