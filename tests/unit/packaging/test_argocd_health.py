"""The Argo CD health checks (examples/argocd/health.lua) against sample objects, in Lua 5.1.

Argo CD runs health scripts in gopher-lua, a Lua 5.1 implementation; lupa's ``lua51`` module embeds the
reference Lua 5.1, so a script that needs a later Lua fails here too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lupa.lua51 as lupa
import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = (ROOT / "examples" / "argocd" / "health.lua").read_text()


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the script returns for obj, as Argo CD would run it (a global ``obj``)."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


def cond(ctype: str, status: str, message: str = "", reason: str = "R") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def db(phase: str | None, *conditions: dict[str, str], kind: str = "DatabaseCluster", gen: int = 2) -> Any:
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "x", "generation": gen}}
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": 2, "conditions": list(conditions)}
    return obj


@pytest.mark.parametrize("kind", ["DatabaseInstance", "DatabaseCluster"])
@pytest.mark.parametrize(
    ("phase", "conditions", "want", "message"),
    [
        ("Ready", [cond("Ready", "True", "3/3 members ready")], "Healthy", "3/3 members ready"),
        ("Ready", [cond("Ready", "False", "1/3 ready")], "Progressing", "1/3 ready"),
        ("Ready", [], "Progressing", "Waiting for the Ready condition"),
        ("Pending", [], "Progressing", "Pending"),
        ("Provisioning", [cond("Progressing", "True", "StatefulSet rolling")], "Progressing",
         "StatefulSet rolling"),
        ("Updating", [cond("Ready", "False", "rolling 2/3")], "Progressing", "rolling 2/3"),
        ("Degraded", [cond("Degraded", "True", "replica orders-2 lags 300s")], "Degraded",
         "replica orders-2 lags 300s"),
        ("Failed", [cond("Failed", "True", "spec.parameters.bogus: unknown parameter")], "Degraded",
         "spec.parameters.bogus: unknown parameter"),
        ("Failed", [], "Degraded", "Failed"),
        ("Exploded", [], "Unknown", "Unknown phase Exploded"),
    ],
)  # fmt: skip
def test_instance_and_cluster(kind: str, phase: str, conditions: list[Any], want: str, message: str) -> None:
    assert health(db(phase, *conditions, kind=kind)) == (want, message)


def test_no_status_yet_is_progressing() -> None:
    assert health(db(None))[0] == "Progressing"


def test_a_spec_change_not_yet_observed_is_progressing_even_if_ready() -> None:
    obj = db("Ready", cond("Ready", "True"), gen=3)
    assert health(obj) == ("Progressing", "Waiting for the operator to act on generation 3")


@pytest.mark.parametrize(
    ("status", "want", "message"),
    [
        ({"phase": "Completed"}, "Healthy", "Backup completed"),
        ({"phase": "Running", "conditions": [cond("Progressing", "True", "12 MiB streamed")]},
         "Progressing", "12 MiB streamed"),
        ({"phase": "Pending"}, "Progressing", "Backup pending"),
        ({"phase": "Failed", "error": "bucket not found"}, "Degraded", "bucket not found"),
        ({"phase": "Failed", "conditions": [cond("Failed", "True", "agent unreachable")]}, "Degraded",
         "agent unreachable"),
    ],
)  # fmt: skip
def test_backup(status: dict[str, Any], want: str, message: str) -> None:
    obj = {"kind": "DatabaseBackup", "metadata": {"name": "b", "generation": 1}, "status": status}
    assert health(obj) == (want, message)


def test_argocd_cm_holds_the_script_verbatim() -> None:
    gen = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-argocd-cm.py"), "--check"], check=False)
    assert gen.returncode == 0, "examples/argocd/argocd-cm.yaml is stale: run python hack/gen-argocd-cm.py"
