"""The ``Restored`` condition of a resource created with ``spec.restoreFrom``: what its restore init
containers and then its agents say.

The init container (``kubetrove-agent restore``, agent/backup/restore.py) exits 0 once the data is in
place (or already was, or, for a logical backup, once the backup is checked), 2 when it refuses the
backup (missing, incomplete, corrupt, another engine or major version: the volume untouched) and 1 when
a tool or the volume failed. Its last words are its termination message: the ErrorReply JSON it prints
on stderr (render sets ``FallbackToLogsOnError``). The kubelet retries a failed init container with
back-off and never starts the engine meanwhile, so the resource stays out of Ready and this condition is
where a user reads why.

Once a member's init container is done, its agent says the rest (``GET /v1/restore``,
agent/backup/restore_gate.py): a logical backup is loaded by the agent into the running engine
(restoring), a checksum mismatch found while spooling is refused, a failed or interrupted load is failed;
a physical restore is simply done. An agent that cannot be asked yet (starting, unreachable) means the
member is still restoring, never that it is restored.

Invariants: computed only while the restore is not done; once True it stays True (restoreFrom applies at
creation: a later pod's init container is a no-op, and its start must not flip the condition). A failure
on any member wins over members still restoring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubetrove.agent.protocol import RestoreProgress, RestoreState
from kubetrove.k8s.port import Obj
from kubetrove.render.names import RESTORE_CONTAINER

# A member's agent's answer: its progress, or why it could not be asked (unreachable, not yet started).
AgentReply = RestoreProgress | str

REFUSED_EXIT = 2  # agent/backup/restore.py: the backup cannot be used, nothing was touched


def _detail(terminated: dict[str, Any]) -> str:
    """The agent's ``detail`` from a termination message, else the message or the exit code."""
    message = str(terminated.get("message") or "").strip()
    for line in reversed(message.splitlines()):
        try:
            reply = json.loads(line)
        except ValueError:
            continue
        if isinstance(reply, dict) and reply.get("detail"):
            return str(reply["detail"])
    return message[-500:] or f"exit code {terminated.get('exitCode')} ({terminated.get('reason', '')})"


def _restore_status(pod: Obj) -> dict[str, Any] | None:
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    return next((s for s in statuses if s.get("name") == RESTORE_CONTAINER), None)


def _init_done(status: dict[str, Any]) -> bool:
    terminated = (status.get("state") or {}).get("terminated")
    return bool(terminated and terminated.get("exitCode") == 0)


def init_done(pod: Obj) -> bool:
    """The member's restore init container has exited 0 (its agent is the one to ask from then on)."""
    return _init_done(_restore_status(pod) or {})


def _agent_state(name: str, reply: AgentReply | None) -> tuple[str, str] | None:
    """(reason, message) of a member whose init container is done; None when its restore is done."""
    if not isinstance(reply, RestoreProgress):
        return "Restoring", f"{name} (agent: {reply or 'not asked yet'})"
    if reply.state is RestoreState.DONE:
        return None
    if reply.state is RestoreState.REFUSED:
        return "RestoreRefused", f"{name}: {reply.detail}"
    if reply.state is RestoreState.FAILED:
        return "RestoreFailed", f"{name}: {reply.detail}"
    return "Restoring", f"{name} (agent {reply.state.value}: {reply.detail})"


def restore_state(pods: list[Obj], agents: Mapping[str, AgentReply]) -> tuple[bool, str, str] | None:
    """(ok, reason, message) of the Restored condition from the members' pods and agents; None without pods.

    ``agents`` maps a pod name to its agent's reply; members whose init container is done are expected
    there (missing: not asked yet, so still restoring).
    """
    if not pods:
        return None
    restoring: list[str] = []
    failed: list[tuple[str, str]] = []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        name, status = pod["metadata"]["name"], _restore_status(pod) or {}
        if _init_done(status):
            state = _agent_state(name, agents.get(name))
            if state is None:
                continue
            if state[0] == "Restoring":
                restoring.append(state[1])
            else:
                failed.append(state)
            continue
        now = (status.get("state") or {}).get("terminated")
        last = now or (status.get("lastState") or {}).get("terminated")
        if last and last.get("exitCode") != 0:
            reason = "RestoreRefused" if last.get("exitCode") == REFUSED_EXIT else "RestoreFailed"
            failed.append((reason, f"{name}: {_detail(last)}"))
        else:
            restoring.append(f"{name} (restore init container)")
    if failed:
        return False, *failed[0]
    if restoring:
        return False, "Restoring", f"the restore has not finished on {', '.join(restoring)}"
    return True, "Restored", "the backup is restored on every member"
