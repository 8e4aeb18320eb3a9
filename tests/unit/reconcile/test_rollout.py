"""OnDelete rolls: replicas first (highest ordinal first), the primary last, one member at a time."""

from __future__ import annotations

from kubetrove.reconcile.phases.rollout import REVISION_LABEL, next_victim
from kubetrove.render.names import LABEL_ROLE


def pod(i: int, rev: str, ready: bool = True, role: str | None = None) -> dict:
    labels = {REVISION_LABEL: rev, **({LABEL_ROLE: role} if role else {})}
    cond = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": {"name": f"db-{i}", "labels": labels}, "status": {"conditions": cond}}


def names(victim: dict | None) -> str | None:
    return victim["metadata"]["name"] if victim else None


def test_replicas_first_then_primary() -> None:
    pods = [pod(0, "old", role="replica"), pod(1, "old", role="primary"), pod(2, "old", role="replica")]
    assert names(next_victim(pods, 3, "new")) == "db-2"
    pods[2] = pod(2, "new", role="replica")
    assert names(next_victim(pods, 3, "new")) == "db-0"
    pods[0] = pod(0, "new", role="replica")
    assert names(next_victim(pods, 3, "new")) == "db-1"


def test_without_role_labels_ordinal_zero_is_last() -> None:
    pods = [pod(0, "old"), pod(1, "old")]
    assert names(next_victim(pods, 2, "new")) == "db-1"


def test_waits_while_a_member_is_not_ready_or_missing() -> None:
    assert next_victim([pod(0, "old"), pod(1, "new", ready=False)], 2, "new") is None
    assert next_victim([pod(0, "old")], 2, "new") is None


def test_nothing_outdated() -> None:
    assert next_victim([pod(0, "new"), pod(1, "new")], 2, "new") is None
