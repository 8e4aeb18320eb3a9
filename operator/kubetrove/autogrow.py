"""Storage autogrow, carried out: read the claims, the class and the pods, decide (``datastores.growth``),
then record, expand, restart and tell.

Called through ``grow`` by whoever holds the members' volume figures: the clustering loops of a
DatabaseCluster (every cycle; ``clustering/kube_record.py`` is its ``Record``) and the Volume phase of a
DatabaseInstance (each status refresh and autogrow tick; ``reconcile/phases/volume.py``). It reads only
what the decision needs: while every measured volume is below the threshold and no restart is owed, it
reads nothing and only keeps the StorageAutogrow condition.

Order, so that a crash at any point resumes safely (the next call sees what was written):
1. ``status.storage`` first (the size decided, ``lastGrowth``): the Storage phase and every later call
   grow the claims to ``max(spec.storage.size, status.storage.size)``;
2. then each claim below it is patched (a claim left behind by a crash is ``pending``: patched again);
3. then the ``StorageGrown`` Event.
A restart is recorded in ``lastGrowth.restarted`` before the pod is deleted: at most once per growth
(a crash between the two leaves the kubelet's own restart back-off to finish the job).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubetrove.api import conditions
from kubetrove.api.common import Storage
from kubetrove.api.resources import ObjectRef
from kubetrove.api.status import StorageGrowth, StorageStatus
from kubetrove.datastores import growth
from kubetrove.datastores.growth import Action, Claim, Fill
from kubetrove.k8s import ops
from kubetrove.k8s.errors import ApiError
from kubetrove.k8s.kinds import POD, PVC, STORAGE_CLASS
from kubetrove.k8s.port import Kube, Obj
from kubetrove.render.names import ENGINE_CONTAINER, ChildNames

log = logging.getLogger(__name__)

CONDITION = "StorageAutogrow"
GROWN = "StorageGrown"  # Normal: from, to, the member that crossed the threshold
RESTARTED = (
    "StorageRestartedMember"  # Normal: a member's pod deleted so its engine starts on the larger volume
)
# Warning Events, posted once when the condition turns False with this reason.
WARNINGS = {
    "MaximumReached": "StorageAutogrowMaximumReached",
    "ExpansionNotAllowed": "StorageAutogrowRefused",
}


class Record(Protocol):
    """Where autogrow writes: the resource's status and its Events."""

    async def write_storage(self, storage: Obj | None, condition: Obj | None, drop: bool = False) -> None:
        """Store ``status.storage`` and the StorageAutogrow condition in one status write (None: leave
        it as it is; ``drop``: remove the condition), keeping the condition's lastTransitionTime unless
        its status flips."""
        ...

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        """An Event regarding the resource."""
        ...


def engine_running(pod: Obj | None) -> bool | None:
    """Whether the pod's engine container runs and is ready (None: no pod, or no status for it yet)."""
    if pod is None:
        return None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == ENGINE_CONTAINER:
            return bool(cs.get("ready")) and "running" in (cs.get("state") or {})
    return None


def _claim(pvc: Obj) -> Claim:
    requested = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "0")
    capacity = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
    return Claim(requested=str(requested), capacity=None if capacity is None else str(capacity))


@dataclass
class Autogrow:
    """One resource's autogrow: ``run`` once per observation of its members' volumes."""

    kube: Kube
    namespace: str
    name: str
    record: Record
    generation: int | None = None

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.name)

    async def _claims(self, pods: Sequence[str]) -> tuple[dict[str, Claim], str | None]:
        """Each member's claim (members without one yet left out) and the first claim's StorageClass."""
        out: dict[str, Claim] = {}
        storage_class = None
        for i, pod in enumerate(pods):
            pvc = await self.kube.get(PVC, self.namespace, self.names.data_claim(i))
            if pvc is not None:
                out[pod] = _claim(pvc)
                storage_class = storage_class or (pvc.get("spec") or {}).get("storageClassName")
        return out, storage_class

    async def _expandable(self, storage_class: str | None) -> bool | None:
        """The class's allowVolumeExpansion; None when it cannot be read (then the patch is tried)."""
        if not storage_class:
            return None
        try:
            sc = await self.kube.get(STORAGE_CLASS, None, storage_class)
        except ApiError as exc:
            log.warning("Cannot read StorageClass %s: %s", storage_class, exc)
            return None
        return None if sc is None else bool(sc.get("allowVolumeExpansion"))

    def _quiet(
        self,
        spec: Storage,
        fills: Mapping[str, Fill],
        last: StorageGrowth | None,
        pods: Mapping[str, Obj | None],
    ) -> bool:
        """Nothing to read: every measured volume below the threshold, and no restart owed."""
        assert spec.autogrow is not None
        limit = spec.autogrow.threshold / 100
        if any((r := f.ratio) is not None and r >= limit for f in fills.values()):
            return False
        if last is None:
            return True
        owed = [p for p in last.full if p not in last.restarted and engine_running(pods.get(p)) is False]
        return not owed

    async def run(
        self,
        spec: Storage,
        stored: StorageStatus | None,
        condition: Obj | None,
        fills: Mapping[str, Fill],
        pods: Mapping[str, Obj | None],
        now: datetime.datetime,
    ) -> growth.Plan | None:
        """One step: ``spec`` (spec.storage), ``stored`` (status.storage), ``condition`` (the stored
        StorageAutogrow), ``fills`` (measured volumes), ``pods`` (member pod -> its object, in ordinal
        order). Returns the plan carried out (None: autogrow off, or nothing needed reading)."""
        if spec.autogrow is None:
            if condition is not None:  # autogrow was turned off: its condition goes (status.storage stays)
                await self.record.write_storage(None, None, drop=True)
            return None
        last = stored.last_growth if stored else None
        decided = stored.size if stored else None
        if self._quiet(spec, fills, last, pods):
            ok, reason = growth.REASONS[Action.NONE]
            measured = "every measured data volume" if fills else "no member's volume measured yet;"
            message = f"{measured} below {spec.autogrow.threshold}% (maximum {spec.autogrow.maximum})"
            await self._condition(condition, ok, reason, message)
            return None
        members = list(pods)
        claims, claimed_class = await self._claims(members)
        expandable = await self._expandable(spec.storage_class_name or claimed_class)
        plan = growth.plan(spec.size, spec.autogrow, decided, claims, fills, expandable)
        if plan.action is Action.GROW:
            assert plan.member is not None
            last = StorageGrowth.model_validate(
                {
                    "from": plan.current,
                    "to": plan.size,
                    "time": conditions.stamp(now),
                    "member": plan.member,
                    "reason": plan.message,
                    "full": list(plan.full),
                }
            )
            storage = StorageStatus(size=plan.size, last_growth=last)
            await self.record.write_storage(storage.to_wire(), self._cond(*plan.condition, plan.message))
            await self._expand(members, plan.pending, plan.size)
            await self.record.event(
                GROWN, f"grew the data volumes from {plan.current} to {plan.size}: {plan.member} crossed "
                f"{spec.autogrow.threshold}% ({plan.message})",
            )  # fmt: skip
            return plan
        if plan.action is Action.WAIT and plan.pending:
            await self._expand(members, plan.pending, plan.size)
        await self._condition(condition, *plan.condition, plan.message)
        if plan.action in (Action.NONE, Action.WAIT) and last is not None and stored is not None:
            await self._restart(stored, last, claims, pods)
        return plan

    async def _expand(self, members: Sequence[str], pending: Sequence[str], size: str) -> None:
        """Patch the claims of ``pending`` members (by ordinal, ``members`` order) to ``size``."""
        for ordinal, pod in enumerate(members):
            if pod in pending:
                claim = self.names.data_claim(ordinal)
                log.info("autogrow: expanding PVC %s to %s", claim, size)
                await ops.expand_pvc(self.kube, self.namespace, claim, size)

    async def _restart(
        self,
        stored: StorageStatus,
        last: StorageGrowth,
        claims: Mapping[str, Claim],
        pods: Mapping[str, Obj | None],
    ) -> None:
        running = {p: r for p, obj in pods.items() if (r := engine_running(obj)) is not None}
        due = growth.restarts(last.to_size, last.full, last.restarted, claims, running)
        for pod in due:
            done = last.model_copy(update={"restarted": sorted({*last.restarted, pod})})
            await self.record.write_storage(stored.model_copy(update={"last_growth": done}).to_wire(), None)
            last = done
            log.info("autogrow: deleting pod %s so its engine starts on the grown volume", pod)
            await self.kube.delete(POD, self.namespace, pod)
            await self.record.event(
                RESTARTED, f"deleted pod {pod}: its engine was not running after its volume grew to "
                f"{last.to_size}, and starts again on the larger filesystem",
            )  # fmt: skip

    def _cond(self, ok: bool, reason: str, message: str) -> Obj:
        return conditions.make(CONDITION, ok, reason, message, self.generation).to_wire()

    async def _condition(self, stored: Obj | None, ok: bool, reason: str, message: str) -> None:
        """Write the condition when it changed; a Warning Event when it turns False for a new reason."""
        new = self._cond(ok, reason, message)
        if stored is not None and all(stored.get(k) == v for k, v in new.items()):
            return
        await self.record.write_storage(None, new)
        was = (stored or {}).get("status"), (stored or {}).get("reason")
        if not ok and was != ("False", reason) and reason in WARNINGS:
            await self.record.event(WARNINGS[reason], message, warning=True)


async def grow(
    kube: Kube,
    ref: ObjectRef,
    record: Record,
    spec: Storage,
    status: Mapping[str, Any],
    fills: Mapping[str, Fill],
    pods: Mapping[str, Obj | None],
    now: datetime.datetime,
) -> growth.Plan | None:
    """One autogrow step of resource ``ref`` from its stored ``status`` and the members' measured
    ``fills``; nothing without ``spec.autogrow`` unless its condition is still there to remove."""
    condition = stored_condition(status)
    if spec.autogrow is None and condition is None:
        return None
    step = Autogrow(kube, ref.namespace, ref.name, record, ref.generation)
    return await step.run(spec, parse_storage(status), condition, fills, pods, now)


def storage_patch(
    status: Mapping[str, Any], storage: Obj | None, condition: Obj | None, drop: bool, now: str
) -> Obj | None:
    """The status patch of ``Record.write_storage`` over the live ``status`` (None: nothing to write)."""
    patch: Obj = {}
    if storage is not None:
        patch["storage"] = storage
    conds = list(status.get("conditions") or [])
    if condition is not None:
        patch["conditions"] = conditions.put_wire(conds, [condition], now)
    elif drop and any(c.get("type") == CONDITION for c in conds):
        patch["conditions"] = conditions.put_wire(conds, [], now, drop={CONDITION})
    return patch or None


def parse_storage(status: Mapping[str, Any]) -> StorageStatus | None:
    """``status.storage`` as stored (None when absent or unreadable)."""
    raw = status.get("storage")
    try:
        return StorageStatus.from_wire(raw) if isinstance(raw, dict) else None
    except ValueError:
        return None


def stored_condition(status: Mapping[str, Any]) -> Obj | None:
    """The stored StorageAutogrow condition (wire form), if any."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == CONDITION), None)
