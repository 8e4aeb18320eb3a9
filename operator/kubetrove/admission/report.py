"""Write a DatabasePolicy's status (``kubetrove.policy.report``) and warn about new violators.

Reads every namespace's labels, then the resources of the namespaces the policy selects (only those
the operator watches, when it watches a list or globs: its RBAC covers no others), and patches ``status``. A
resource that appears among the violators gets one Warning Event (reason PolicyViolation) naming the
policy and the fields; it is never changed or deleted.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

from kubetrove.admission.review import KINDS, parse_spec, usage_of
from kubetrove.api.database_policy import PolicySpec, PolicyStatus
from kubetrove.api.resources import POLICY, ObjectRef
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.events import EventType, post_quietly
from kubetrove.k8s.kinds import CUSTOM, NAMESPACE
from kubetrove.k8s.port import Kube, Obj
from kubetrove.policy.decide import NamedPolicy
from kubetrove.policy.report import Item, report
from kubetrove.policy.selector import selects

REASON = "PolicyViolation"


def _owned(namespace: str, watched: tuple[str, ...]) -> bool:
    """Whether this operator watches ``namespace`` (every one when ``watched`` is empty; kopf's globs)."""
    return not watched or any(fnmatch.fnmatchcase(namespace, pattern) for pattern in watched)


async def refresh(
    kube: Kube, body: Obj, watched: tuple[str, ...], log: logging.Logger | logging.LoggerAdapter[Any]
) -> PolicyStatus:
    """Compute and write the status of the policy ``body`` for the namespaces this operator watches;
    post an Event for each new violator.

    Several operators (one per team, each watching its namespaces) may report on one policy: each
    rewrites only the entries of the namespaces it watches and keeps the others', with the policy's
    resourceVersion as a precondition (a concurrent write makes it re-read and merge again).
    """
    meta = body["metadata"]
    policy = NamedPolicy(meta["name"], PolicySpec.model_validate(body.get("spec") or {}))
    labels = {
        ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {})
        for ns in await kube.list(NAMESPACE, None)
        if _owned(ns["metadata"]["name"], watched)
    }
    items: dict[str, list[Item]] = {}
    objects: dict[tuple[str, str, str], Obj] = {}
    for ns, ns_labels in labels.items():
        if not selects(policy.spec.namespace_selector, ns_labels):
            continue
        for kind in KINDS:
            for obj in await kube.list(CUSTOM[kind], ns):
                name = obj["metadata"]["name"]
                objects[(ns, kind, name)] = obj
                items.setdefault(ns, []).append(Item(kind, name, parse_spec(kind, obj), usage_of(kind, obj)))
    mine = report(policy, labels, items, meta.get("generation"))
    rtype = CUSTOM[POLICY.kind]
    for _attempt in range(5):
        current = await kube.get(rtype, None, meta["name"])
        if current is None:
            return mine  # deleted meanwhile
        before = PolicyStatus.model_validate(current.get("status") or {})
        status = PolicyStatus(
            observed_generation=mine.observed_generation,
            namespaces=sorted(
                [u for u in before.namespaces if not _owned(u.namespace, watched)] + mine.namespaces,
                key=lambda u: u.namespace,
            ),
            violators=sorted(
                [v for v in before.violators if not _owned(v.namespace, watched)] + mine.violators,
                key=lambda v: (v.namespace, v.kind, v.name),
            ),
        )
        precondition = {"resourceVersion": current["metadata"].get("resourceVersion")}
        try:
            patch = {"metadata": precondition, "status": status.to_wire()}
            await kube.patch(rtype, None, meta["name"], patch, "status")
            break
        except Conflict:
            continue
    else:
        raise Conflict(
            409, "Conflict", f"DatabasePolicy {meta['name']}: status not written after 5 conflicts"
        )
    known = {(v.namespace, v.kind, v.name, v.message) for v in before.violators}
    for v in mine.violators:
        if (v.namespace, v.kind, v.name, v.message) in known:
            continue
        obj = objects[(v.namespace, v.kind, v.name)]
        ref = ObjectRef(v.namespace, v.name, obj["metadata"].get("uid", ""), 0, KINDS[v.kind])
        note = f"DatabasePolicy {policy.name}: {v.message} (created before the policy or a change of it: "
        note += "it keeps running; updates that make it worse are refused)"
        await post_quietly(kube, ref, EventType.WARNING, REASON, note, "Admission", log)
    return status
