"""Status that tells the truth: computed from the observed StatefulSet, Services and (while a member is
not ready) pods, never assumed.

A pure function of what was observed plus the previous status (for ``lastTransitionTime`` and to tell
"Degraded" from "not ready yet"). Rules, in order:

- Failed/Invalid is written by ``run.report_invalid``; here the Failed condition is False.
- Why a member does not run (reconcile/causes.py: image pull, crash loop, unschedulable, unbound
  volume, failing init container) is the Ready reason as soon as a pod shows it, in every case below.
- Stalled: a member not ready for longer than ``spec.progressDeadlineSeconds`` (measured from its pod)
  makes the resource Degraded with that cause, and Progressing False ``ProgressDeadlineExceeded``
  (a Deployment's rule), whether it was rolling or starting.
- Progressing (``Rolling``) while the StatefulSet has not caught up: its controller has not observed the
  latest generation, not every member runs the update revision (``updatedReplicas``; with RollingUpdate
  also ``currentRevision != updateRevision``), there are more pods than wanted (scale-down), or what is
  applied is an older generation of the custom resource.
- Ready only when every member is ready, nothing is progressing, and the applied generation is the
  current one.
- Degraded when, not progressing, some member is not ready after the resource had been Ready (or was
  already Degraded). Before the first Ready it is Provisioning and still Progressing
  (``MembersStarting``): never "Settled" while nothing has converged (issue 23).
- members/primary/errantMembers/rebuilds/storage are left alone: the clustering loop owns them, and its
  ``Replication`` condition is carried over as it is (clustering/kube_record.py); on a DatabaseInstance
  the Volume phase owns members and storage, and StorageLow and StorageAutogrow (phases/volume.py).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from kubetrove.api import conditions
from kubetrove.api.common import Condition, Endpoints
from kubetrove.api.status import ConditionType, Phase, ResourceStatus
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.applied import applied_generation
from kubetrove.reconcile.causes import MembersReport


@dataclass(frozen=True)
class Observed:
    """Everything the status is computed from."""

    generation: int  # metadata.generation of the custom resource
    replicas: int  # desired members
    version: str  # spec.datastore.version
    credentials_secret: str
    statefulset: Obj | None
    rw_service: Obj | None
    ro_service: Obj | None
    namespace: str
    members: MembersReport | None = None  # read from the pods only while some member is not ready


def _endpoint(service: Obj | None, namespace: str) -> str | None:
    if service is None or not service.get("spec", {}).get("ports"):
        return None
    return f"{service['metadata']['name']}.{namespace}.svc:{service['spec']['ports'][0]['port']}"


def _progressing(o: Observed) -> str | None:
    """Why the StatefulSet is still moving, or None when it has settled."""
    sts = o.statefulset
    if sts is None:
        return "creating the StatefulSet"
    st: dict[str, Any] = sts.get("status") or {}
    if st.get("observedGeneration", 0) < sts["metadata"].get("generation", 0):
        return "the StatefulSet controller has not seen the latest template yet"
    if (applied_generation(sts) or 0) < o.generation:
        return "the latest spec is not applied yet"
    if st.get("updatedReplicas", 0) < o.replicas:
        return f"{st.get('updatedReplicas', 0)}/{o.replicas} members updated"
    strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate" and st.get("currentRevision") != st.get("updateRevision"):
        return "rolling update in progress"
    if st.get("replicas", 0) > o.replicas:
        return f"scaling down to {o.replicas} members"
    return None


def _cond(kind: ConditionType, ok: bool, reason: str, message: str, gen: int) -> Condition:
    return conditions.make(kind.value, ok, reason, message, gen)


def with_condition(
    status: ResourceStatus,
    kind: ConditionType,
    ok: bool,
    reason: str,
    message: str,
    gen: int,
    now: datetime.datetime,
) -> ResourceStatus:
    """``status`` with condition ``kind`` set (its lastTransitionTime kept unless its status flips)."""
    new = conditions.put(status.conditions, [_cond(kind, ok, reason, message, gen)], conditions.stamp(now))
    return status.model_copy(update={"conditions": new})


def _had_been_ready(previous: ResourceStatus | None) -> bool:
    return previous is not None and previous.phase in (Phase.READY, Phase.DEGRADED, Phase.UPDATING)


def compute(o: Observed, previous: ResourceStatus | None, now: datetime.datetime) -> ResourceStatus:
    """The status of the custom resource given what was observed."""
    gen = o.generation
    ready_count = int(((o.statefulset or {}).get("status") or {}).get("readyReplicas", 0))
    members = f"{ready_count}/{o.replicas} members ready"
    moving = _progressing(o)
    all_ready = moving is None and ready_count >= o.replicas
    report = None if all_ready else o.members
    cause = report.cause if report else None
    why = f"{members}; {cause[1]}" if cause else members
    progressing: tuple[bool, str, str] = (False, "Settled", "")
    if all_ready:
        phase, ready, degraded = Phase.READY, ("AllMembersReady", members), None
    elif report is not None and report.stalled:
        # Past the deadline: no longer called progress (a Deployment's ProgressDeadlineExceeded).
        phase = Phase.DEGRADED
        ready = (cause[0] if cause else "MembersNotReady", why)
        degraded = cause or ("MembersNotReady", report.stalled_message)
        progressing = (False, "ProgressDeadlineExceeded", report.stalled_message)
    elif moving is not None:
        phase = Phase.UPDATING if _had_been_ready(previous) else Phase.PROVISIONING
        ready, degraded = (cause[0] if cause else "Progressing", f"{why}; {moving}"), None
        progressing = (True, "Rolling", f"{moving}; {cause[1]}" if cause else moving)
    elif _had_been_ready(previous):
        reason = cause[0] if cause else "MembersNotReady"
        phase, ready, degraded = Phase.DEGRADED, (reason, why), (reason, cause[1] if cause else members)
    else:
        # Every pod exists with the latest template, some member is not ready yet: still converging.
        phase, ready, degraded = Phase.PROVISIONING, (cause[0] if cause else "MembersNotReady", why), None
        progressing = (True, "MembersStarting", why)
    own = [
        _cond(ConditionType.READY, all_ready, *ready, gen),
        _cond(ConditionType.PROGRESSING, *progressing, gen),
        _cond(ConditionType.DEGRADED, bool(degraded), *(degraded or ("AsExpected", "")), gen),
        _cond(ConditionType.FAILED, False, "Valid", "", gen),
    ]
    before = previous.conditions if previous else []
    version = o.version if moving is None else (previous.version if previous else None)
    rw, ro = _endpoint(o.rw_service, o.namespace), _endpoint(o.ro_service, o.namespace)
    return ResourceStatus(
        phase=phase,
        # Ours first, then the ones the clustering loop owns (``Replication``), carried over as they are.
        conditions=conditions.with_times(own, before, conditions.stamp(now)) + conditions.others(own, before),
        observed_generation=applied_generation(o.statefulset) or None,
        endpoints=Endpoints(read_write=rw, read_only=ro) if rw or ro else None,
        credentials_secret=o.credentials_secret,
        version=version,
    )


def invalid(
    message: str, generation: int, previous: ResourceStatus | None, now: datetime.datetime
) -> ResourceStatus:
    """The status of a resource whose spec was refused: Failed/Invalid, everything else as it was."""
    base = previous or ResourceStatus()
    own = [
        _cond(ConditionType.FAILED, True, "Invalid", message, generation),
        _cond(ConditionType.READY, False, "Invalid", message, generation),
    ]
    return base.model_copy(
        update={
            "phase": Phase.FAILED,
            "conditions": conditions.with_times(own, base.conditions, conditions.stamp(now))
            + conditions.others(own, base.conditions),
            "observed_generation": generation,
        }
    )


def as_patch(status: ResourceStatus) -> dict[str, Any]:
    """The status as a merge patch: only the fields reconcile owns (clustering owns members/primary)."""
    wire = status.to_wire()
    owned = ("phase", "conditions", "observedGeneration", "endpoints", "credentialsSecret", "version")
    return {k: wire.get(k) for k in owned}


def rebase(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """``ours`` (a patch computed from ``base``) re-applied over ``theirs`` (what was written since ``base``
    was read): a three-way merge, pure. A field, or a condition by type, that we left as ``base`` had it
    takes ``theirs``; one we changed keeps ours; a condition we dropped goes unless they changed it too.
    Why: a status refresh computes from the body it was handed, and writing that over a newer status
    would put older conditions back (a reconcile's ScaleDown, the ring loop's Replication)."""
    out = {k: (theirs.get(k) if v == base.get(k) else v) for k, v in ours.items() if k != "conditions"}

    def by_type(status: dict[str, Any]) -> dict[str, Any]:
        return {c["type"]: c for c in status.get("conditions") or []}

    b, o, t = by_type(base), by_type(ours), by_type(theirs)
    merged = []
    for kind in [*t, *(k for k in o if k not in t)]:
        if kind in o and o[kind] != b.get(kind):
            merged.append(o[kind])  # ours changed it
        elif kind in t and not (kind in b and kind not in o and t[kind] == b[kind]):
            merged.append(t[kind])  # theirs, unless we dropped it and they left it alone
    out["conditions"] = merged
    return out
