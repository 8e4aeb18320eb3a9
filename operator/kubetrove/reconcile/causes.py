"""Why members do not run: causes read from the pods and their volume claims (pure).

A StatefulSet only counts ready pods; the reason a pod is not running is spread over the pod's status
(https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-states) and its claims:

- the scheduler's verdict is the pod condition ``PodScheduled=False`` with reason ``Unschedulable`` and
  its message ("0/1 nodes are available: 1 Insufficient memory ...");
- a claim that cannot be bound keeps the pod unschedulable ("pod has unbound immediate
  PersistentVolumeClaims"); the claim itself only says ``Pending``, so a storage class that does not
  exist is found by comparing ``spec.storageClassName`` with the classes that do;
- the kubelet's verdicts are container states: ``waiting`` with ``ErrImagePull`` / ``ImagePullBackOff``
  (the image cannot be pulled), ``CrashLoopBackOff`` (it exits, the exit code is in
  ``lastState.terminated``), ``CreateContainerConfigError`` (a missing Secret or key); and
  ``terminated`` with a non-zero exit code. Init containers (the restore) block the engine, so theirs
  come first. With ``terminationMessagePolicy: FallbackToLogsOnError`` (render sets it on the engine,
  the agent and the restore container) the kubelet copies the tail of a failed container's log into
  ``terminated.message``: that is the engine's last words, shown here.

How long a member has gone without progress is read from the pod too, not from a clock of the
operator's (so a restarted operator measures the same): since its Ready condition last turned False,
or since the pod was created when it never had one (an unscheduled pod has none).

Invariants: a pod yields at most one cause (the one that blocks it first: scheduling, then init
containers, then containers); pods being deleted, and pods merely starting (no verdict yet), yield none.
The summary names every affected pod, most blocking reason first, and stays short enough for a condition.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubetrove.api.conditions import parse_time
from kubetrove.k8s.port import Obj

# Kubelet waiting reasons (pkg/kubelet/images/types.go) that mean the image is not there to run.
IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}
)
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
TAIL_LINES = 5  # lines of a termination message kept (the kubelet keeps up to 80 lines / 2 KiB)
MAX_MESSAGE = 900  # characters of a summary (a condition message is read in `kubectl describe`)


class Reason(enum.StrEnum):
    """Why a member does not run; the value is the condition reason a user sees."""

    VOLUME_NOT_BOUND = "VolumeNotBound"
    UNSCHEDULABLE = "Unschedulable"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    INIT_CONTAINER_FAILED = "InitContainerFailed"
    CONTAINER_CONFIG_ERROR = "ContainerConfigError"
    CRASH_LOOP = "CrashLoop"
    POD_FAILED = "PodFailed"


# Most blocking first: it is the reason of the summary when several pods fail differently.
PRIORITY = {reason: rank for rank, reason in enumerate(Reason)}


@dataclass(frozen=True)
class Cause:
    """One pod's reason for not running, and the detail a user acts on."""

    reason: Reason
    pod: str
    detail: str


def _tail(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-TAIL_LINES:])


def _claims(pod: Obj) -> list[str]:
    volumes: list[dict[str, Any]] = (pod.get("spec") or {}).get("volumes") or []
    return [v["persistentVolumeClaim"]["claimName"] for v in volumes if v.get("persistentVolumeClaim")]


def _unbound(pod: Obj, claims: Mapping[str, Obj], storage_classes: frozenset[str] | None) -> str | None:
    """Why a claim of the pod is not bound, or None when all are bound (or unknown)."""
    for name in _claims(pod):
        claim = claims.get(name)
        if claim is None or (claim.get("status") or {}).get("phase") == "Bound":
            continue
        wanted = (claim.get("spec") or {}).get("storageClassName")
        if wanted and storage_classes is not None and wanted not in storage_classes:
            return f"volume claim {name}: storage class {wanted!r} does not exist"
        phase = (claim.get("status") or {}).get("phase", "Pending")
        return f"volume claim {name} is {phase} (storage class {wanted or 'default'!r})"
    return None


def _scheduling(pod: Obj, claims: Mapping[str, Obj], storage_classes: frozenset[str] | None) -> Cause | None:
    name = pod["metadata"]["name"]
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            unbound = _unbound(pod, claims, storage_classes)
            if unbound is not None:
                return Cause(Reason.VOLUME_NOT_BOUND, name, unbound)
            if cond.get("reason") == "Unschedulable":
                return Cause(Reason.UNSCHEDULABLE, name, str(cond.get("message") or "no node fits"))
    return None


def _exited(terminated: Mapping[str, Any]) -> str:
    code = terminated.get("exitCode")
    why = terminated.get("reason")
    text = f"exit code {code}" + (f" ({why})" if why and why not in ("Error", "Completed") else "")
    tail = _tail(str(terminated.get("message") or ""))
    return f"{text}; last log lines: {tail}" if tail else text


def _container(
    pod: str, status: Mapping[str, Any], spec_images: Mapping[str, str], init: bool
) -> Cause | None:
    """The verdict on one container, or None while it runs or starts normally."""
    container = status.get("name", "?")
    what = f"init container {container}" if init else f"container {container}"
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    message = str(waiting.get("message") or "").strip()
    if reason in IMAGE_PULL_REASONS:
        image = spec_images.get(container) or status.get("image") or "?"
        detail = f"{what}: image {image} cannot be pulled ({reason}" + (f": {message})" if message else ")")
        return Cause(Reason.IMAGE_PULL_FAILED, pod, detail)
    if reason in CONFIG_REASONS:
        return Cause(Reason.CONTAINER_CONFIG_ERROR, pod, f"{what}: {reason}: {message or 'no message'}")
    last = (status.get("lastState") or {}).get("terminated")
    restarts = int(status.get("restartCount") or 0)
    failed_now = state.get("terminated") if (state.get("terminated") or {}).get("exitCode") else None
    if reason == "CrashLoopBackOff" or failed_now:
        ended = failed_now or last or {}
        kind = Reason.INIT_CONTAINER_FAILED if init else Reason.CRASH_LOOP
        return Cause(kind, pod, f"{what} exited ({_exited(ended)}), restarted {restarts} times")
    return None


def pod_cause(pod: Obj, claims: Mapping[str, Obj], storage_classes: frozenset[str] | None) -> Cause | None:
    """Why ``pod`` does not run, or None (it runs, starts normally, or is being deleted).

    ``claims`` are the namespace's PersistentVolumeClaims by name; ``storage_classes`` the names that
    exist among the StorageClasses the unbound claims name (``claimed_classes``), or None when they could
    not be read (then a class is never called missing).
    """
    meta = pod["metadata"]
    if meta.get("deletionTimestamp"):
        return None
    cause = _scheduling(pod, claims, storage_classes)
    if cause is not None:
        return cause
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    images = {
        c["name"]: c.get("image", "")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
    }
    for statuses, init in (
        (status.get("initContainerStatuses"), True),
        (status.get("containerStatuses"), False),
    ):
        found = [c for c in (_container(meta["name"], s, images, init) for s in statuses or []) if c]
        if found:
            return min(found, key=lambda c: PRIORITY[c.reason])
    if status.get("phase") == "Failed":
        why = status.get("reason") or "Failed"
        return Cause(Reason.POD_FAILED, meta["name"], f"{why}: {status.get('message') or 'no message'}")
    return None


def claimed_classes(claims: Iterable[Obj]) -> list[str]:
    """The StorageClasses named by claims that are not bound: the ones to look up (RBAC: get)."""
    named = {
        (c.get("spec") or {}).get("storageClassName")
        for c in claims
        if (c.get("status") or {}).get("phase") != "Bound"
    }
    return sorted(n for n in named if n)


def pod_causes(
    pods: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[str] | None
) -> list[Cause]:
    """The cause of every pod that does not run, most blocking first, then by pod name."""
    by_name = {c["metadata"]["name"]: c for c in claims}
    classes = None if storage_classes is None else frozenset(storage_classes)
    found = [c for c in (pod_cause(p, by_name, classes) for p in pods) if c is not None]
    return sorted(found, key=lambda c: (PRIORITY[c.reason], c.pod))


def summary(causes: list[Cause]) -> tuple[Reason, str] | None:
    """(reason, message) for a condition: the most blocking reason; every cause, grouped by detail.

    Members failing the same way share one part ("db-0, db-1: container engine exited ...").
    """
    if not causes:
        return None
    groups: dict[str, list[str]] = {}
    for cause in causes:
        groups.setdefault(cause.detail, []).append(cause.pod)
    parts = [f"{', '.join(pods)}: {detail}" for detail, pods in groups.items()]
    message = "; ".join(parts)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return causes[0].reason, message


def not_ready_since(pod: Obj) -> datetime.datetime | None:
    """Since when the member has not been ready, or None when it is ready (or being deleted)."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return None
            if cond.get("lastTransitionTime"):
                return parse_time(cond["lastTransitionTime"])
    created = pod["metadata"].get("creationTimestamp")
    return parse_time(created) if created else None


def stalled(pods: Iterable[Obj], now: datetime.datetime, deadline_seconds: float) -> list[str]:
    """The members not ready for longer than ``deadline_seconds``, by name."""
    limit = datetime.timedelta(seconds=deadline_seconds)
    out = []
    for pod in pods:
        since = not_ready_since(pod)
        if since is not None and now - since > limit:
            out.append(pod["metadata"]["name"])
    return sorted(out)


@dataclass(frozen=True)
class MembersReport:
    """What the pods say about members that do not run: the summary of causes, and who is stalled."""

    cause: tuple[Reason, str] | None
    stalled: tuple[str, ...]
    deadline_seconds: int

    @property
    def stalled_message(self) -> str:
        """Why the wait is over, for Progressing=False ProgressDeadlineExceeded."""
        who = ", ".join(self.stalled)
        return f"{who} not ready for more than {self.deadline_seconds} s (spec.progressDeadlineSeconds)"


def members_report(
    pods: list[Obj],
    claims: Iterable[Obj],
    storage_classes: Iterable[str] | None,
    now: datetime.datetime,
    deadline_seconds: int,
) -> MembersReport:
    """Causes and stalled members of ``pods`` (see ``pod_causes`` and ``stalled``)."""
    return MembersReport(
        summary(pod_causes(pods, claims, storage_classes)),
        tuple(stalled(pods, now, deadline_seconds)),
        deadline_seconds,
    )
