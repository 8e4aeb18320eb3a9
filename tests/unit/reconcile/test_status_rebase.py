"""A status refresh's write re-applied over a newer stored status (reconcile/status.py, rebase)."""

from __future__ import annotations

from typing import Any

from kubetrove.reconcile.status import rebase


def cond(kind: str, status: str, reason: str = "R") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "lastTransitionTime": "t"}


def test_what_we_left_alone_takes_theirs_and_what_we_changed_stays_ours() -> None:
    base = {"phase": "Updating", "observedGeneration": 2, "conditions": [cond("Ready", "False")]}
    ours = {"phase": "Ready", "observedGeneration": 2, "conditions": [cond("Ready", "True")]}
    theirs = {
        "phase": "Updating",
        "observedGeneration": 3,  # a reconcile of a newer generation wrote meanwhile
        "conditions": [cond("Ready", "False"), cond("ScaleDown", "True", "Decommissioned")],
    }
    assert rebase(base, ours, theirs) == {
        "phase": "Ready",
        "observedGeneration": 3,
        "conditions": [cond("Ready", "True"), cond("ScaleDown", "True", "Decommissioned")],
    }


def test_a_condition_we_dropped_goes_unless_they_changed_it() -> None:
    base = {"conditions": [cond("Ready", "True"), cond("Restored", "False"), cond("ScaleDown", "False")]}
    ours = {"conditions": [cond("Ready", "True")]}
    theirs = {"conditions": [cond("Ready", "True"), cond("Restored", "False"), cond("ScaleDown", "True")]}
    assert rebase(base, ours, theirs)["conditions"] == [cond("Ready", "True"), cond("ScaleDown", "True")]


def test_a_condition_only_we_have_is_added() -> None:
    ours = {"conditions": [cond("Ready", "True"), cond("TLSReady", "True")]}
    assert rebase({}, ours, {"conditions": [cond("Ready", "False")]})["conditions"] == [
        cond("Ready", "True"),
        cond("TLSReady", "True"),
    ]
