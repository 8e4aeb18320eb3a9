"""The ``Restored`` condition of a resource created with ``spec.restoreFrom``: what its restore init
containers say.

The init container (``kubetrove-agent restore``, agent/backup/restore.py) exits 0 once the data is in
place (or already was), 2 when it refuses the backup (missing, incomplete, corrupt, another engine or
major version: the volume untouched) and 1 when a tool or the volume failed. Its last words are its
termination message: the ErrorReply JSON it prints on stderr (render sets ``FallbackToLogsOnError``).
The kubelet retries a failed init container with back-off and never starts the engine meanwhile, so the
resource stays out of Ready and this condition is where a user reads why.

Invariants: computed only while the restore is not done; once True it stays True (restoreFrom applies at
creation: a later pod's init container is a no-op, and its start must not flip the condition). A failure
on any member wins over members still restoring.
"""

from __future__ import annotations

import json
from typing import Any

from kubetrove.api.status import ConditionType, ResourceStatus
from kubetrove.k8s.kinds import POD
from kubetrove.k8s.port import Obj
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context
from kubetrove.render import labels
from kubetrove.render.names import RESTORE_CONTAINER

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


def restore_state(pods: list[Obj]) -> tuple[bool, str, str] | None:
    """(ok, reason, message) of the Restored condition from the members' pods; None without pods."""
    if not pods:
        return None
    restoring, failed = [], []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        name, status = pod["metadata"]["name"], _restore_status(pod) or {}
        now = (status.get("state") or {}).get("terminated")
        if now and now.get("exitCode") == 0:
            continue
        last = now or (status.get("lastState") or {}).get("terminated")
        if last and last.get("exitCode") != 0:
            failed.append((name, last))
        else:
            restoring.append(name)
    if failed:
        name, terminated = failed[0]
        reason = "RestoreRefused" if terminated.get("exitCode") == REFUSED_EXIT else "RestoreFailed"
        return False, reason, f"{name}: {_detail(terminated)}"
    if restoring:
        return False, "Restoring", f"the restore init container has not finished on {', '.join(restoring)}"
    return True, "Restored", "the backup is restored on every member"


async def with_restore_condition(ctx: Context, status: ResourceStatus) -> ResourceStatus:
    """``status`` with the Restored condition updated (unchanged without restoreFrom or once True)."""
    restore = ctx.spec.restore_from
    if restore is None:
        return status
    kind = ConditionType.RESTORED
    if any(c.type == kind and c.status == "True" for c in status.conditions):
        return status
    selector = labels.selector_labels(ctx.parsed.ref, ctx.spec.datastore.type)
    state = restore_state(await ctx.deps.kube.list(POD, ctx.namespace, selector))
    if state is None:
        return status
    ok, reason, message = state
    text = f"DatabaseBackup {restore.backup}: {message}"
    return st.with_condition(status, kind, ok, reason, text, ctx.parsed.ref.generation, ctx.deps.clock())
