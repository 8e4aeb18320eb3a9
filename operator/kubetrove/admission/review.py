"""One admission request: read what the decision needs, decide (pure), remember what was admitted.

Concurrency: what is guaranteed under parallel creates against a nearly full quota.
The API server calls the webhook for each request independently, and an admitted object becomes
visible to a list only once it is stored, a few milliseconds later. Two parallel creates could both
see the old usage and both pass. So, inside the one active operator (the Lease holder is the only
instance serving the webhook: a standby is not Ready, so the webhook Service does not route to it):

- decisions for one namespace are serialised (an asyncio lock per namespace, held from reading the
  usage to recording the result);
- an admitted create or update is remembered as a *reservation* (its usage, for ``RESERVATION_SECONDS``)
  and counted on top of what the list shows, the larger of the two for an object that is in both,
  until a list shows the object as stored after the request (same uid, another resourceVersion:
  the API server assigns the uid before validating admission, the resourceVersion when it stores).

Hence: admitted requests never take a namespace past a quota. The price: a request admitted by us but
then refused by the API server (another webhook, a name that exists), or deleted before any list saw
it, keeps its reservation for ``RESERVATION_SECONDS``, during which a request that would just fit may
be refused (a retry after that passes). Dry-run requests are decided the same way and reserve nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from kubetrove.api.database_policy import PolicySpec
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, POLICY, Kind
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.kinds import CUSTOM, NAMESPACE
from kubetrove.k8s.port import Kube, Obj
from kubetrove.policy import usage
from kubetrove.policy.decide import Decision, NamedPolicy, Review, decide
from kubetrove.policy.usage import Usage

RESERVATION_SECONDS = 30.0
KINDS: dict[str, Kind] = {k.kind: k for k in (INSTANCE, CLUSTER, BACKUP)}


@dataclass(frozen=True)
class Request:
    """What an admission request says, independent of kopf."""

    kind: str  # DatabaseInstance, DatabaseCluster or DatabaseBackup
    operation: str  # CREATE or UPDATE (deletes are never sent: the configurations do not ask for them)
    namespace: str
    name: str
    new: Obj
    old: Obj | None
    username: str
    dry_run: bool = False


@dataclass(frozen=True)
class Reservation:
    """An admitted request not yet seen stored: what it uses, until when, and which object it is."""

    usage: Usage
    expiry: float  # on the Admission's clock
    uid: str
    resource_version: str  # of the object in the request ("" for a create)


def parse_spec(kind: str, body: Obj | None) -> InstanceSpec | None:
    """The spec of a database body as its model (ClusterSpec for clusters); None for a DatabaseBackup, a
    missing body, or a spec the model refuses (the operator then fails it with a condition; nothing runs)."""
    if body is None or kind == BACKUP.kind:
        return None
    try:
        spec = KINDS[kind].spec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None
    return spec if isinstance(spec, InstanceSpec) else None


def usage_of(kind: str, body: Obj) -> Usage:
    """What one object counts (a database with an unparsable spec: its count only)."""
    if kind == BACKUP.kind:
        return usage.of_backup(dict((body.get("metadata") or {}).get("labels") or {}))
    spec = parse_spec(kind, body)
    if spec is not None:
        return usage.of_database(spec)
    return Usage(instances=1) if kind == INSTANCE.kind else Usage(clusters=1)


def same_spec(request: Request) -> bool:
    """An update that leaves the spec as it was (labels, annotations, finalizers): nothing to review."""
    return request.old is not None and request.old.get("spec") == request.new.get("spec")


class Admission:
    """The webhook's state: the client, the settings, the per-namespace locks and the reservations."""

    def __init__(
        self,
        kube: Kube,
        operator_user: str,
        require_policy: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.operator_user = operator_user
        self.require_policy = require_policy
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._reserved: dict[tuple[str, str, str], Reservation] = {}  # by (namespace, kind, name)

    async def policies(self) -> list[NamedPolicy]:
        """Every DatabasePolicy (a consistent list from the API server: a policy created a moment ago
        applies at once). One that the model refuses cannot exist (the CRD's schema is the model's)."""
        items = await self.kube.list(CUSTOM[POLICY.kind], None)
        return [
            NamedPolicy(p["metadata"]["name"], PolicySpec.model_validate(p.get("spec") or {})) for p in items
        ]

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The labels of ``namespace`` (an admission request carries the object, not its namespace)."""
        ns = await self.kube.get(NAMESPACE, None, namespace)
        return dict(((ns or {}).get("metadata") or {}).get("labels") or {})

    async def usage(self, namespace: str, skip: tuple[str, str] | None) -> Usage:
        """The namespace's usage: every listed object and every live reservation, without ``skip``
        (kind, name): the object under review."""
        now = self.clock()
        per_object: dict[tuple[str, str], Usage] = {}
        stored: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, name) -> (uid, resourceVersion)
        for kind in KINDS:
            for obj in await self.kube.list(CUSTOM[kind], namespace):
                meta = obj["metadata"]
                per_object[(kind, meta["name"])] = usage_of(kind, obj)
                stored[(kind, meta["name"])] = (meta.get("uid", ""), meta.get("resourceVersion", ""))
        for (ns, kind, name), held in list(self._reserved.items()):
            uid, version = stored.get((kind, name), ("", ""))
            landed = bool(uid) and uid == held.uid and version != held.resource_version
            if held.expiry <= now or (ns == namespace and landed):
                del self._reserved[(ns, kind, name)]  # expired, or the list now counts it as stored
            elif ns == namespace:
                per_object[(kind, name)] = per_object.get((kind, name), Usage()).most(held.usage)
        if skip is not None:
            per_object.pop(skip, None)
        return usage.total(list(per_object.values()))

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    async def review(self, request: Request) -> Decision:
        """Allowed or refused, with every violation; an admitted create or update is reserved."""
        if request.username == self.operator_user or same_spec(request):
            # The operator's own creates (scheduled backups, verification instances) follow from a
            # resource that was admitted; metadata-only updates (finalizers, labels) change nothing here.
            return Decision((), (), None)
        policies = await self.policies()
        labels = await self.namespace_labels(request.namespace)
        async with self._lock(request.namespace):
            others = await self.usage(request.namespace, (request.kind, request.name))
            new_usage = usage_of(request.kind, request.new)
            old_usage = usage_of(request.kind, request.old) if request.old is not None else None
            review = Review(
                namespace=request.namespace,
                namespace_labels=labels,
                kind=request.kind,
                name=request.name,
                new=parse_spec(request.kind, request.new),
                old=parse_spec(request.kind, request.old),
                others=others,
                new_usage=new_usage,
                old_usage=old_usage,
            )
            decision = decide(policies, review, self.require_policy)
            if decision.allowed and not request.dry_run:
                key = (request.namespace, request.kind, request.name)
                meta = request.new.get("metadata") or {}
                self._reserved[key] = Reservation(
                    new_usage,
                    self.clock() + RESERVATION_SECONDS,
                    str(meta.get("uid", "")),
                    str(meta.get("resourceVersion", "")),
                )
        return decision

    async def tier(self, request: Request) -> Decision:
        """The decision's tier and policies without quotas (what the mutating webhook labels)."""
        spec = parse_spec(request.kind, request.new)
        if spec is None:
            return Decision((), (), None)
        policies = await self.policies()
        labels = await self.namespace_labels(request.namespace)
        review = Review(request.namespace, labels, request.kind, request.name, spec)
        return decide(policies, review, self.require_policy)
