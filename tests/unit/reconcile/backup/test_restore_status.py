"""The Restored condition from the restore init container's statuses (as the kubelet reports them)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrove.reconcile.backup.restore_status import restore_state

REFUSAL = (
    "Traceback is not expected here, but a log line may precede the reply\n"
    '{"error":"restore_refused","detail":"backup b1 is corrupt: artifact backup.xbstream has sha256 00"}'
)


def pod(name: str, state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status = {"name": "restore", "state": state, "lastState": last or {}}
    return {"metadata": {"name": name}, "status": {"initContainerStatuses": [status]}}


def terminated(code: int, message: str = "") -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed", "message": message}}


BACKOFF = {"waiting": {"reason": "CrashLoopBackOff"}}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([], None),
        ([pod("db-0", {"running": {}})], (False, "Restoring", "has not finished on db-0")),
        ([pod("db-0", terminated(0))], (True, "Restored", "restored on every member")),
        # Back-off after a refusal: the reason is in lastState; the agent's detail is the message.
        (
            [pod("db-0", BACKOFF, terminated(2, REFUSAL))],
            (False, "RestoreRefused", "db-0: backup b1 is corrupt: artifact backup.xbstream"),
        ),
        (
            [pod("db-0", terminated(1, "mbstream: disk full"))],
            (False, "RestoreFailed", "db-0: mbstream: disk full"),
        ),
        ([pod("db-0", terminated(137))], (False, "RestoreFailed", "db-0: exit code 137 (Error)")),
        # A retry that succeeded after a failure: the current state wins.
        ([pod("db-0", terminated(0), terminated(1, "x"))], (True, "Restored", "")),
        # One member failed, one still restoring: the failure is what matters.
        (
            [pod("db-1", {"running": {}}), pod("db-0", terminated(2, REFUSAL))],
            (False, "RestoreRefused", "db-0: backup b1 is corrupt"),
        ),
        ([{"metadata": {"name": "db-0"}, "status": {}}], (False, "Restoring", "db-0")),
    ],
)
def test_restore_state(pods: list[dict[str, Any]], expected: tuple[bool, str, str] | None) -> None:
    state = restore_state(pods)
    if expected is None:
        assert state is None
        return
    assert state is not None
    ok, reason, message = state
    assert (ok, reason) == expected[:2]
    assert expected[2] in message
