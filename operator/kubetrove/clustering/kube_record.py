"""``ClusterRecord`` on the ``Kube`` Protocol: one DatabaseCluster's resource, pods and Events.

It lives in ``clustering`` (not ``k8s``) because it joins three layers the import contract keeps apart:
``k8s`` (the API), ``render.names`` (child and label names) and ``clustering.snapshot`` (the view).

Status ownership (reconcile/status.py says the same from its side):
- the loop owns ``status.primary``, ``status.members``, ``status.errantMembers``, ``status.rebuilds``
  and the conditions of type ``Replication`` (True when Healthy; reason = the loop's state; message =
  decide's reasons) and ``StorageLow`` (a member's data volume over 80 %, from the agents' reports);
  with spec.storage.autogrow also ``status.storage`` and the ``StorageAutogrow`` condition
  (``grow_storage``, carried out by kubetrove/autogrow.py);
- the reconcile phases own every other field and condition, and carry ``Replication`` over untouched.
  Both write ``conditions`` whole (a merge patch replaces lists), so this side writes them with the
  resourceVersion it read and re-reads on Conflict; a reconcile write from a stale body that drops the
  condition is noticed on the next cycle (stored != wanted) and written again.

Invariant I1 (docs/clustering.md): ``write_primary`` either stores status.primary or raises; it
never returns having silently lost the write (Conflict is retried with a fresh resourceVersion, and
the stored value is read back from the reply).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubetrove import autogrow
from kubetrove.agent.protocol import RingNode, Status, VolumeUsage
from kubetrove.api import conditions
from kubetrove.api.common import Condition, ConditionStatus, Storage
from kubetrove.api.resources import CLUSTER, ObjectRef, parse_body
from kubetrove.api.specs import ClusterSpec
from kubetrove.api.status import MemberRebuild
from kubetrove.clustering.gauges import ClusterGauges
from kubetrove.clustering.ops import AskVolume, MemberUnreachable
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores.base import Datastore
from kubetrove.datastores.growth import Fill
from kubetrove.k8s import ops
from kubetrove.k8s.errors import NotFound
from kubetrove.k8s.events import EventType, post_event
from kubetrove.k8s.kinds import POD, STATEFULSET
from kubetrove.k8s.port import Kube, Obj
from kubetrove.metrics import OperatorMetrics
from kubetrove.observation import (
    STORAGE_CONDITION,
    fill_of,
    member_status,
    same_members,
    same_storage,
    storage_condition,
    turned_low,
)
from kubetrove.render import labels
from kubetrove.render.names import LABEL_ROLE, ChildNames

log = logging.getLogger(__name__)

CONDITION = "Replication"
HEALTHY = "Healthy"
STATE_REASON_FALLBACK = "Unknown"


class ClusterGone(Exception):
    """The DatabaseCluster no longer exists (the daemon is about to be stopped)."""


@dataclass
class KubeClusterRecord:
    """The record of the DatabaseCluster ``ref`` (identity only: every read is fresh)."""

    kube: Kube
    ref: ObjectRef
    store: Datastore
    # Positions change with every write; members are rewritten for them at most this often.
    refresh_seconds: float = 30.0
    conflict_retries: int = 5
    on_event: Callable[[str], None] | None = None  # metrics hook: called with each Event's reason
    # The process's metrics (members per role, per member: up, replicating, errant, lag, volume), injected;
    # None: not recorded.
    metrics: OperatorMetrics | None = None
    reporting_instance: str | None = None  # the reportingInstance of its Events (the operator's pod)
    monotonic: Callable[[], float] = time.monotonic
    pods: dict[str, Obj | None] = field(default_factory=dict)  # as of the last load (None: no pod)
    storage: Storage = field(default_factory=Storage)  # spec.storage as of the last load
    status: Obj = field(default_factory=dict)  # status as of the last load
    # Members whose status failed: their volume as last asked alone, and when (asked at most every
    # ``refresh_seconds``, so a dead member's probe does not slow every cycle).
    asked_volumes: dict[str, tuple[float, VolumeUsage | None]] = field(default_factory=dict)
    _written_at: float | None = None
    gauges: ClusterGauges = field(init=False)  # the cluster's series in ``metrics`` (clustering/gauges.py)

    def __post_init__(self) -> None:
        self.gauges = ClusterGauges(self.metrics, self.ref, self.store)

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.ref.name)

    async def _body(self) -> Obj:
        body = await ops.get_custom(self.kube, self.ref)
        if body is None:
            raise ClusterGone(f"{self.ref.namespace}/{self.ref.name}")
        return body

    async def load(self) -> tuple[list[str], ClusterView]:
        """Pods ``<name>-0..n-1`` (n: the StatefulSet's replicas, else spec's) and spec/status fields."""
        body = await self._body()
        spec = parse_body(CLUSTER, body, ClusterSpec).spec
        sts = await self.kube.get(STATEFULSET, self.ref.namespace, self.names.statefulset)
        count = int((sts or {}).get("spec", {}).get("replicas", spec.replicas))
        pods = [f"{self.names.statefulset}-{i}" for i in range(count)]
        selector = labels.selector_labels(self.ref, self.store.engine)
        live = {p["metadata"]["name"]: p for p in await self.kube.list(POD, self.ref.namespace, selector)}
        self.pods = {pod: live.get(pod) for pod in pods}
        status = body.get("status") or {}
        self.storage, self.status = spec.storage, status
        view = ClusterView(
            members=(),
            current_primary=status.get("primary"),
            wanted_primary=spec.primary,
            automatic_failover=spec.failover.automatic,
            detection_seconds=float(spec.failover.detection_seconds),
            ack_count=self.store.semi_sync_ack_count(count),
            errant=frozenset(status.get("errantMembers") or ()),
            rejoin_rewinds=self.store.rejoin_rewinds,
            rebuild_errant=self.store.rebuilds_errant and spec.failover.rebuild_errant,
        )
        return pods, view

    def pod_ip(self, pod: str) -> str:
        """The pod's IP as of the last load ("" when it has none yet)."""
        return str(((self.pods.get(pod) or {}).get("status") or {}).get("podIP") or "")

    async def _patch_status(self, build: Callable[[Obj], Obj | None]) -> Obj | None:
        """Read, build a status patch from the live body (None: nothing to do), write it with the
        read resourceVersion; on Conflict read again. Raises Conflict after ``conflict_retries``."""
        return await ops.update_status(self.kube, self.ref, build, self.conflict_retries, self._body)

    async def write_primary(self, primary: str) -> None:
        """status.primary := ``primary`` (I1): stored, or an exception; never silently lost."""

        def build(body: Obj) -> Obj | None:
            return None if (body.get("status") or {}).get("primary") == primary else {"primary": primary}

        written = await self._patch_status(build)
        if written is not None and (written.get("status") or {}).get("primary") != primary:
            raise RuntimeError(f"status.primary of {self.ref.name} was not stored (schema pruned it?)")

    async def write_observation(
        self,
        state: str,
        members: Mapping[str, Status | None],
        errant: tuple[str, ...],
        reasons: tuple[str, ...],
        ring: Mapping[str, RingNode] | None = None,
    ) -> None:
        """members, errantMembers, the Replication and StorageLow conditions; written only when they
        changed (positions, lag, load and volume usage alone: at most every ``refresh_seconds``)."""
        wanted = [member_status(pod, st, (ring or {}).get(pod)) for pod, st in members.items()]
        self.gauges.record(wanted, members, errant)
        storage = storage_condition(wanted, self.ref.generation)
        went_low: list[str] = []
        cond = Condition(
            type=CONDITION,
            status=ConditionStatus.TRUE if state == HEALTHY else ConditionStatus.FALSE,
            reason=state or STATE_REASON_FALLBACK,
            message="; ".join(reasons),
            observed_generation=self.ref.generation,
        ).to_wire()
        now = self.monotonic()
        due = self._written_at is None or now - self._written_at >= self.refresh_seconds

        def build(body: Obj) -> Obj | None:
            status = body.get("status") or {}
            stored = list(status.get("conditions") or [])
            old = next((c for c in stored if c.get("type") == CONDITION), None)
            same_cond = old is not None and all(old.get(k) == v for k, v in cond.items())
            if (
                same_cond
                and same_storage(stored, storage, due)
                and same_members(status.get("members") or [], wanted, due)
                and sorted(status.get("errantMembers") or []) == sorted(errant)
            ):
                return None
            went_low[:] = [low] if (low := turned_low(stored, storage)) else []
            new = [cond] + ([storage] if storage is not None else [])
            stamp = conditions.stamp(datetime.datetime.now(datetime.UTC))
            return {
                "members": wanted,
                "errantMembers": sorted(errant),
                "conditions": conditions.put_wire(stored, new, stamp),
            }

        if await self._patch_status(build) is not None:
            self._written_at = now
            for message in went_low:
                await self.event(STORAGE_CONDITION, message, warning=True)

    async def _volumes(self, members: Mapping[str, Status | None], ask: AskVolume) -> dict[str, Fill]:
        """Each member's measured volume: from its status, else asked alone (throttled)."""
        now = self.monotonic()
        fills: dict[str, Fill] = {}
        for pod, st in members.items():
            usage: VolumeUsage | None
            if st is not None:
                self.asked_volumes.pop(pod, None)
                usage = st.volume
            else:
                at, usage = self.asked_volumes.get(pod, (None, None))
                if at is None or now - at >= self.refresh_seconds:
                    try:
                        usage = await ask(pod)
                    except MemberUnreachable:
                        usage = None
                    self.asked_volumes[pod] = (now, usage)
            if usage is not None:
                fills[pod] = fill_of(usage)
        return fills

    async def grow_storage(self, members: Mapping[str, Status | None], ask: AskVolume) -> None:
        """Storage autogrow (kubetrove/autogrow.py) from this cycle's figures; nothing without
        spec.storage.autogrow (unless its condition is still there to remove)."""
        if self.storage.autogrow is None and autogrow.stored_condition(self.status) is None:
            return
        fills = await self._volumes(members, ask) if self.storage.autogrow is not None else {}
        now = datetime.datetime.now(datetime.UTC)
        await autogrow.grow(self.kube, self.ref, self, self.storage, self.status, fills, dict(self.pods), now)

    async def write_storage(self, storage: Obj | None, condition: Obj | None, drop: bool = False) -> None:
        """status.storage and the StorageAutogrow condition (autogrow.Record), with the read
        resourceVersion like every write of the loop; the loaded status follows what was written."""
        stamp = conditions.stamp(datetime.datetime.now(datetime.UTC))

        def build(body: Obj) -> Obj | None:
            return autogrow.storage_patch(body.get("status") or {}, storage, condition, drop, stamp)

        written = await self._patch_status(build)
        if written is not None:
            self.status = written.get("status") or {}

    async def record_rebuild(self, pod: str, source: str, discarded: str) -> None:
        """status.rebuilds: this rebuild replaces the member's previous entry (I7)."""
        stamp = conditions.stamp(datetime.datetime.now(datetime.UTC))
        entry = MemberRebuild(pod=pod, source=source, discarded=discarded, time=stamp).to_wire()

        def build(body: Obj) -> Obj | None:
            kept = [r for r in (body.get("status") or {}).get("rebuilds") or [] if r.get("pod") != pod]
            return {"rebuilds": [*kept, entry]}

        await self._patch_status(build)

    async def label_roles(self, roles: Mapping[str, str]) -> None:
        """kubetrove.io/role on each pod (skipped when already set; a missing pod is skipped)."""
        for pod, role in roles.items():
            have = ((self.pods.get(pod) or {}).get("metadata") or {}).get("labels") or {}
            if have.get(LABEL_ROLE) == role:
                continue
            try:
                self.pods[pod] = await ops.label_pod(self.kube, self.ref.namespace, pod, {LABEL_ROLE: role})
            except NotFound:
                log.info("label %s=%s: pod %s does not exist", LABEL_ROLE, role, pod)

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        """An Event regarding the DatabaseCluster (action ``Clustering``)."""
        etype = EventType.WARNING if warning else EventType.NORMAL
        await post_event(self.kube, self.ref, etype, reason, message, "Clustering", self.reporting_instance)
        if self.on_event is not None:
            self.on_event(reason)
