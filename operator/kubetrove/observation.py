"""A resource's members as their agents report them: the ``status.members`` entries, the ``StorageLow``
condition, and the members' volume series (docs/operations.md, "Capacity").

Two observers share it, each owning these fields on its own kind:
- the clustering loop of a DatabaseCluster (clustering/kube_record.py), every cycle;
- the Volume phase of a DatabaseInstance (reconcile/phases/volume.py), at each status refresh, and with
  spec.storage.autogrow also on the autogrow timer.

They differ only in when the figures that move with every write (``MOVING``) are rewritten alone
(``due``): the loop at most every 30 s; an instance when its fill moved by a whole percent
(``fill_moved``), since it keeps no clock between refreshes and a thousand idle instances must not each
write their status at every refresh (docs/operations.md, "Scale").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubetrove.agent.protocol import RingNode, Role, Status, VolumeUsage
from kubetrove.api.common import Condition, ConditionStatus
from kubetrove.api.status import MemberRole, MemberStatus
from kubetrove.datastores.growth import Fill
from kubetrove.metrics import OperatorMetrics, PodSeries

# docs/operations.md, "Capacity": a member's data volume above this fill level sets StorageLow.
STORAGE_CONDITION = "StorageLow"
STORAGE_LOW = 0.80
# Fields that move on every write (positions, lag, a node's data size, the volume's use): a change of
# only these is written when ``due``.
MOVING = ("position", "lagSeconds", "load", "volumeUsedBytes", "volumeAvailableBytes")
# An instance rewrites its volume figures alone when its fill moved by at least this much.
FILL_STEP = 0.01


def member_status(
    pod: str,
    st: Status | None,
    node: RingNode | None = None,
    volume: VolumeUsage | None = None,
    replication: bool = True,
) -> dict[str, Any]:
    """One ``status.members`` entry (wire form) from an agent reply (None: its status failed) and, in a
    ring, the member's node as the ring sees it. ``volume``: the data volume measured alone (GET
    /v1/volume) when the status failed; ``replication`` False (a DatabaseInstance): no position or lag,
    which only mean something to replicas."""
    ring: dict[str, Any] = {}
    if node is not None:
        ring = {
            "ring_state": node.state,
            "host_id": node.host_id,
            "address": node.address,
            "tokens": node.tokens,
            "load": node.load,
        }
    usage = st.volume if st is not None else volume
    figures: dict[str, Any] = {}
    if usage is not None:
        figures = {
            "volume_used_bytes": usage.used_bytes,
            "volume_available_bytes": usage.available_bytes,
            "volume_capacity_bytes": usage.capacity_bytes,
        }
    if st is None:
        return MemberStatus(pod=pod, **ring, **figures).to_wire()
    if st.role is Role.STANDALONE:  # writable without replicas: the primary of a one-member cluster
        role = MemberRole.UNKNOWN if st.read_only else MemberRole.PRIMARY
    else:
        role = MemberRole(st.role.value)
    moving: dict[str, Any] = {"position": st.position, "lag_seconds": st.lag_seconds} if replication else {}
    return MemberStatus(pod=pod, role=role, healthy=st.healthy, **moving, **ring, **figures).to_wire()


def fill(entry: Mapping[str, Any]) -> float | None:
    """df's Use% of a ``status.members`` entry: used / (used + available); None when not measured."""
    used = entry.get("volumeUsedBytes")
    if used is None:
        return None
    room = used + (entry.get("volumeAvailableBytes") or 0)
    return used / room if room > 0 else None


def fill_of(usage: VolumeUsage) -> Fill:
    """The autogrow decision's view of a measured volume."""
    return Fill(usage.used_bytes, usage.available_bytes, usage.capacity_bytes)


def storage_condition(members: Sequence[Mapping[str, Any]], generation: int | None) -> dict[str, Any] | None:
    """The StorageLow condition (wire form) from ``status.members`` entries; None when none was measured.

    True when a member's data volume is filled above ``STORAGE_LOW`` (df's Use%: used / (used + available),
    since what root keeps in reserve the engine cannot write). None (the stored condition is left as it
    is) when no member reported its volume: every agent unreachable for a moment says nothing new about
    the disks, and an agent older than the volume report never measures.
    """
    measured = {m["pod"]: f for m in members if (f := fill(m)) is not None}
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


def steady(members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Members without the fields that move on every write: what "changed" means."""
    return [{k: v for k, v in m.items() if k not in MOVING} for m in members]


def same_members(stored: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]], due: bool) -> bool:
    """Nothing to write: the same members, the moving figures aside unless they are ``due``."""
    return steady(stored) == steady(wanted) and (list(stored) == list(wanted) or not due)


def fill_moved(stored: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]) -> bool:
    """Some member's fill moved by ``FILL_STEP`` or more since ``stored`` (or was not measured there)."""
    before = {m.get("pod"): fill(m) for m in stored}
    for m in wanted:
        now, then = fill(m), before.get(m.get("pod"))
        if now is not None and (then is None or abs(now - then) >= FILL_STEP):
            return True
    return False


def same_storage(conditions: Sequence[Mapping[str, Any]], low: Mapping[str, Any] | None, due: bool) -> bool:
    """The stored StorageLow already says ``low`` (None: nothing new to say). Its message carries
    percentages that move with every write: a change of status or reason counts at once, of the message
    only when ``due``."""
    if low is None:
        return True
    old = next((c for c in conditions if c.get("type") == STORAGE_CONDITION), None)
    return old is not None and all(old.get(k) == v for k, v in low.items() if k != "message" or due)


def turned_low(conditions: Sequence[Mapping[str, Any]], low: Mapping[str, Any] | None) -> str | None:
    """The message of the StorageLow Warning Event when ``low`` turns True over the stored ``conditions``."""
    old = next((c for c in conditions if c.get("type") == STORAGE_CONDITION), None)
    if low is None or low["status"] != "True" or (old or {}).get("status") == "True":
        return None
    return str(low["message"])


@dataclass
class VolumeSeries:
    """``kubetrove_member_volume_{used,available,capacity}_bytes`` of one resource's members (None
    metrics: nothing is recorded). A member without figures loses its series."""

    metrics: OperatorMetrics | None
    series: PodSeries

    def _gauges(self) -> list[tuple[str, Any]]:
        m = self.metrics
        if m is None:
            return []
        return [
            ("volumeUsedBytes", m.member_volume_used),
            ("volumeAvailableBytes", m.member_volume_available),
            ("volumeCapacityBytes", m.member_volume_capacity),
        ]

    def record(self, members: Sequence[Mapping[str, Any]]) -> None:
        """Each measured member's figures, as just observed (``status.members`` entries)."""
        measured = [x for x in members if x.get("volumeUsedBytes") is not None]
        for key, gauge in self._gauges():
            self.series.set(gauge, {x["pod"]: float(x.get(key) or 0) for x in measured})

    def forget(self) -> None:
        """Remove every volume series of the resource."""
        self.series.forget([gauge for _, gauge in self._gauges()])
