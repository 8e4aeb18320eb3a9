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
from typing import Any

from kubetrove import autogrow
from kubetrove.agent.protocol import RingNode, Role, Status, VolumeUsage
from kubetrove.api import conditions
from kubetrove.api.common import Condition, ConditionStatus, Storage
from kubetrove.api.resources import CLUSTER, ObjectRef, parse_body
from kubetrove.api.specs import ClusterSpec
from kubetrove.api.status import MemberRebuild, MemberRole, MemberStatus
from kubetrove.clustering.gauges import ClusterGauges
from kubetrove.clustering.ops import AskVolume, MemberUnreachable
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores.base import Datastore
from kubetrove.datastores.growth import Fill
from kubetrove.k8s import ops
from kubetrove.k8s.errors import Conflict, NotFound
from kubetrove.k8s.events import EventType, post_event
from kubetrove.k8s.kinds import POD, STATEFULSET
from kubetrove.k8s.port import Kube, Obj
from kubetrove.metrics import OperatorMetrics
from kubetrove.render import labels
from kubetrove.render.names import LABEL_ROLE, ChildNames

log = logging.getLogger(__name__)

CONDITION = "Replication"
# docs/operations.md, "Capacity": a member's data volume above this fill level sets StorageLow.
STORAGE_CONDITION = "StorageLow"
STORAGE_LOW = 0.80
HEALTHY = "Healthy"
STATE_REASON_FALLBACK = "Unknown"


class ClusterGone(Exception):
    """The DatabaseCluster no longer exists (the daemon is about to be stopped)."""


def member_status(pod: str, st: Status | None, node: RingNode | None = None) -> dict[str, Any]:
    """One ``status.members`` entry (wire form) from an agent reply (None: unreachable) and, in a ring,
    the member's node as the ring sees it."""
    ring: dict[str, Any] = {}
    if node is not None:
        ring = {
            "ring_state": node.state,
            "host_id": node.host_id,
            "address": node.address,
            "tokens": node.tokens,
            "load": node.load,
        }
    if st is None:
        return MemberStatus(pod=pod, **ring).to_wire()
    if st.role is Role.STANDALONE:  # writable without replicas: the primary of a one-member cluster
        role = MemberRole.UNKNOWN if st.read_only else MemberRole.PRIMARY
    else:
        role = MemberRole(st.role.value)
    volume: dict[str, Any] = {}
    if st.volume is not None:
        volume = {
            "volume_used_bytes": st.volume.used_bytes,
            "volume_available_bytes": st.volume.available_bytes,
            "volume_capacity_bytes": st.volume.capacity_bytes,
        }
    wire = MemberStatus(
        pod=pod,
        role=role,
        position=st.position,
        lag_seconds=st.lag_seconds,
        healthy=st.healthy,
        **ring,
        **volume,
    ).to_wire()
    return wire


def storage_condition(members: list[dict[str, Any]], generation: int | None) -> dict[str, Any] | None:
    """The StorageLow condition (wire form) from ``status.members`` entries; None when none was measured.

    True when a member's data volume is filled above ``STORAGE_LOW`` (df's Use%: used / (used + available),
    since what root keeps in reserve the engine cannot write). None (the stored condition is left as it
    is) when no member reported its volume: every agent unreachable for a moment says nothing new about
    the disks, and an agent older than the volume report never measures.
    """
    measured = {
        m["pod"]: m["volumeUsedBytes"] / room
        for m in members
        if m.get("volumeUsedBytes") is not None
        and (room := m["volumeUsedBytes"] + (m.get("volumeAvailableBytes") or 0)) > 0
    }
    limit = f"{STORAGE_LOW:.0%}"
    full = {pod: used for pod, used in measured.items() if used > STORAGE_LOW}
    if full:
        status, reason = ConditionStatus.TRUE, "VolumeAboveThreshold"
        message = ", ".join(f"{pod} {used:.0%}" for pod, used in sorted(full.items()))
        message = f"data volume over {limit} used: {message}"
    elif measured:
        status, reason = ConditionStatus.FALSE, "BelowThreshold"
        message = f"every measured data volume at or under {limit} (fullest {max(measured.values()):.0%})"
    else:
        return None
    return Condition(
        type=STORAGE_CONDITION, status=status, reason=reason, message=message, observed_generation=generation
    ).to_wire()


# Fields that move on every write (positions, lag, a node's data size): a change of only these is
# written at most every ``refresh_seconds``.
_MOVING = ("position", "lagSeconds", "load", "volumeUsedBytes", "volumeAvailableBytes")


def _steady(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Members without the fields that move on every write: what "changed" means."""
    return [{k: v for k, v in m.items() if k not in _MOVING} for m in members]


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
        for attempt in range(self.conflict_retries):
            body = await self._body()
            status = build(body)
            if status is None:
                return None
            patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "status": status}
            try:
                return await self.kube.patch(
                    ops.custom_type(self.ref), self.ref.namespace, self.ref.name, patch, "status"
                )
            except Conflict:
                log.info(
                    "status of %s changed meanwhile (attempt %d); re-reading", self.ref.name, attempt + 1
                )
        raise Conflict(
            409, "Conflict", f"status of {self.ref.name}: gave up after {self.conflict_retries} tries"
        )

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
            conditions = list(status.get("conditions") or [])
            old = next((c for c in conditions if c.get("type") == CONDITION), None)
            same_cond = old is not None and all(old.get(k) == v for k, v in cond.items())
            old_storage = next((c for c in conditions if c.get("type") == STORAGE_CONDITION), None)
            # Its message carries percentages that move with every write: a change of status or reason
            # is written at once, the message with the members' figures (at most every refresh_seconds).
            same_storage = storage is None or (
                old_storage is not None
                and all(old_storage.get(k) == v for k, v in storage.items() if k != "message" or due)
            )
            stored = list(status.get("members") or [])
            same_members = _steady(stored) == _steady(wanted) and (stored == wanted or not due)
            if (
                same_cond
                and same_storage
                and same_members
                and sorted(status.get("errantMembers") or []) == sorted(errant)
            ):
                return None
            new = [dict(cond, lastTransitionTime=_transition(old, cond))]
            went_low.clear()
            if storage is not None:
                new.append(dict(storage, lastTransitionTime=_transition(old_storage, storage)))
                if storage["status"] == "True" and (old_storage or {}).get("status") != "True":
                    went_low.append(storage["message"])
            replaced = {c["type"] for c in new}
            kept = [c for c in conditions if c.get("type") not in replaced]
            return {"members": wanted, "errantMembers": sorted(errant), "conditions": [*kept, *new]}

        if await self._patch_status(build) is not None:
            self._written_at = now
            for message in went_low:
                await self.event("StorageLow", message, warning=True)

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
                fills[pod] = Fill(usage.used_bytes, usage.available_bytes, usage.capacity_bytes)
        return fills

    async def grow_storage(self, members: Mapping[str, Status | None], ask: AskVolume) -> None:
        """Storage autogrow (kubetrove/autogrow.py) from this cycle's figures; nothing without
        spec.storage.autogrow (unless its condition is still there to remove)."""
        condition = autogrow.stored_condition(self.status)
        if self.storage.autogrow is None and condition is None:
            return
        fills = await self._volumes(members, ask) if self.storage.autogrow is not None else {}
        step = autogrow.Autogrow(self.kube, self.ref.namespace, self.ref.name, self, self.ref.generation)
        stored = autogrow.parse_storage(self.status)
        now = datetime.datetime.now(datetime.UTC)
        await step.run(self.storage, stored, condition, fills, dict(self.pods), now)

    async def write_storage(self, storage: Obj | None, condition: Obj | None, drop: bool = False) -> None:
        """status.storage and the StorageAutogrow condition (autogrow.Record), with the read
        resourceVersion like every write of the loop; the loaded status follows what was written."""

        def build(body: Obj) -> Obj | None:
            status = body.get("status") or {}
            patch: Obj = {}
            if storage is not None:
                patch["storage"] = storage
            conds = list(status.get("conditions") or [])
            old = next((c for c in conds if c.get("type") == autogrow.CONDITION), None)
            kept = [c for c in conds if c.get("type") != autogrow.CONDITION]
            if condition is not None:
                patch["conditions"] = [*kept, dict(condition, lastTransitionTime=_transition(old, condition))]
            elif drop and old is not None:
                patch["conditions"] = kept
            return patch or None

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


def _transition(old: Obj | None, new: Obj) -> str:
    """lastTransitionTime by the one rule (kubetrove/api/conditions.py)."""
    old = old or {}
    now = conditions.stamp(datetime.datetime.now(datetime.UTC))
    return conditions.transition_time(old.get("status"), old.get("lastTransitionTime"), new["status"], now)
