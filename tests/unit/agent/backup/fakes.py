"""A fake engine whose "backup tool" is a small Python program: the runner and restore run it for real."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import BackupPlan, EngineMethods, PhysicalRestore, Step
from kubetrove.agent.protocol import BackupMethod


class ToolEngine(EngineMethods):
    """Its physical backup runs ``script``; its restore extracts with tar (so a tar artifact restores)."""

    engine = "cassandra"  # an engine name the manifest/registry accept; only the commands are fake
    methods = frozenset({BackupMethod.PHYSICAL})

    def __init__(self, script: str) -> None:
        self.script = script

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        step = Step((sys.executable, "-c", self.script), "data.bin")
        return BackupPlan("faketool", (step,), re.compile(r"position: (\S+)"), files={"secret.cnf": "pw"})

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        return PhysicalRestore(extract=("tar", "-x", "-f", "-", "-C", str(staging)))


def writes(data_expr: str, stderr: str = "position: 0-1-7", code: int = 0) -> str:
    """A tool script: write ``data_expr`` (bytes) to stdout, ``stderr`` to stderr, exit ``code``."""
    return (
        "import sys; sys.stdout.buffer.write(" + data_expr + "); sys.stdout.flush();"
        f" sys.stderr.write({stderr!r}); sys.exit({code})"
    )
