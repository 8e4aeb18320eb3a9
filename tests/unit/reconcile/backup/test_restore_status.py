"""The Restored condition from the restore init container's statuses (as the kubelet reports them) and,
once those are done, from the members' agents (``GET /v1/restore``)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrove.agent.protocol import BackupMethod, RestoreProgress, RestoreState
from kubetrove.reconcile.backup.restore_status import AgentReply, restore_state

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


def progress(state: RestoreState, detail: str = "") -> RestoreProgress:
    return RestoreProgress(backup_id="b1", method=BackupMethod.LOGICAL, state=state, detail=detail)


DONE = {"db-0": progress(RestoreState.DONE), "db-1": progress(RestoreState.DONE)}


@pytest.mark.parametrize(
    ("pods", "agents", "expected"),
    [
        ([], {}, None),
        ([pod("db-0", {"running": {}})], {}, (False, "Restoring", "has not finished on db-0")),
        ([pod("db-0", terminated(0))], DONE, (True, "Restored", "restored on every member")),
        # Back-off after a refusal: the reason is in lastState; the agent's detail is the message.
        (
            [pod("db-0", BACKOFF, terminated(2, REFUSAL))],
            {},
            (False, "RestoreRefused", "db-0: backup b1 is corrupt: artifact backup.xbstream"),
        ),
        (
            [pod("db-0", terminated(1, "mbstream: disk full"))],
            {},
            (False, "RestoreFailed", "db-0: mbstream: disk full"),
        ),
        ([pod("db-0", terminated(137))], {}, (False, "RestoreFailed", "db-0: exit code 137 (Error)")),
        # A retry that succeeded after a failure: the current state wins.
        ([pod("db-0", terminated(0), terminated(1, "x"))], DONE, (True, "Restored", "")),
        # One member failed, one still restoring: the failure is what matters.
        (
            [pod("db-1", {"running": {}}), pod("db-0", terminated(2, REFUSAL))],
            {},
            (False, "RestoreRefused", "db-0: backup b1 is corrupt"),
        ),
        ([{"metadata": {"name": "db-0"}, "status": {}}], {}, (False, "Restoring", "db-0")),
        # Init container done: the agent says the rest. Not asked / unreachable: still restoring.
        ([pod("db-0", terminated(0))], {}, (False, "Restoring", "db-0 (agent: not asked yet)")),
        (
            [pod("db-0", terminated(0))],
            {"db-0": "unreachable: ClientConnectorError()"},
            (False, "Restoring", "db-0 (agent: unreachable: ClientConnectorError()"),
        ),
        (
            [pod("db-0", terminated(0))],
            {"db-0": progress(RestoreState.PENDING, "waiting for the engine to accept writes")},
            (False, "Restoring", "db-0 (agent pending: waiting for the engine to accept writes)"),
        ),
        (
            [pod("db-0", terminated(0))],
            {"db-0": progress(RestoreState.RESTORING, "spooling and verifying 1 artifact(s)")},
            (False, "Restoring", "db-0 (agent restoring: spooling"),
        ),
        (
            [pod("db-0", terminated(0))],
            {"db-0": progress(RestoreState.REFUSED, "backup b1 is corrupt: artifact backup.sql")},
            (False, "RestoreRefused", "db-0: backup b1 is corrupt: artifact backup.sql"),
        ),
        (
            [pod("db-0", terminated(0))],
            {"db-0": progress(RestoreState.FAILED, "interrupted while loading: the database holds")},
            (False, "RestoreFailed", "db-0: interrupted while loading"),
        ),
        # A member whose agent is done does not hide one whose init container failed, nor one still loading.
        (
            [pod("db-0", terminated(0)), pod("db-1", terminated(1, "disk full"))],
            DONE,
            (False, "RestoreFailed", "db-1: disk full"),
        ),
        (
            [pod("db-0", terminated(0)), pod("db-1", terminated(0))],
            {**DONE, "db-1": progress(RestoreState.RESTORING, "loading")},
            (False, "Restoring", "has not finished on db-1 (agent restoring: loading)"),
        ),
    ],
)
def test_restore_state(
    pods: list[dict[str, Any]], agents: dict[str, AgentReply], expected: tuple[bool, str, str] | None
) -> None:
    state = restore_state(pods, agents)
    if expected is None:
        assert state is None
        return
    assert state is not None
    ok, reason, message = state
    assert (ok, reason) == expected[:2]
    assert expected[2] in message
