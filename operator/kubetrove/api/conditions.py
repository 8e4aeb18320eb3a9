"""Conditions and their timestamps, each rule written once.

Used by the resource status (reconcile/status.py), the backup lifecycle and restore verification
(reconcile/backup/) and the clustering record (clustering/kube_record.py). Pure: the caller passes the
time, so every rule is unit-tested with a fixed clock.

- Timestamps are RFC 3339 in UTC with whole seconds (``2026-01-02T03:04:05Z``), the form the API server
  itself writes for metav1.Time.
- ``lastTransitionTime`` changes only when a condition's status flips (metav1.Condition: "the last time
  the condition transitioned from one status to another"); a new reason or message keeps it.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kubetrove.api.common import Condition, ConditionStatus

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(now: datetime.datetime) -> str:
    """``now`` as an RFC 3339 timestamp: UTC, whole seconds."""
    return now.astimezone(datetime.UTC).strftime(TIME_FORMAT)


def parse_time(value: str) -> datetime.datetime:
    """An RFC 3339 timestamp as written by ``stamp`` (or the API server)."""
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def make(kind: str, ok: bool, reason: str, message: str, generation: int | None) -> Condition:
    """A condition of type ``kind``, True when ``ok`` (its lastTransitionTime set by ``with_times``)."""
    status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
    return Condition(type=kind, status=status, reason=reason, message=message, observed_generation=generation)


def transition_time(old_status: str | None, old_time: str | None, new_status: str, now: str) -> str:
    """The lastTransitionTime rule: the old time while the status stays, ``now`` when it flips."""
    return old_time if old_time and old_status == new_status else now


def with_times(new: Sequence[Condition], previous: Sequence[Condition], now: str) -> list[Condition]:
    """``new`` with each lastTransitionTime set from the condition of the same type in ``previous``."""
    old = {c.type: c for c in previous}
    out = []
    for c in new:
        before = old.get(c.type)
        when = transition_time(
            before.status if before else None, before.last_transition_time if before else None, c.status, now
        )
        out.append(c.model_copy(update={"last_transition_time": when}))
    return out


def others(own: Sequence[Condition], previous: Sequence[Condition]) -> list[Condition]:
    """The conditions of ``previous`` whose type is not among ``own`` (someone else's: kept as they are)."""
    types = {c.type for c in own}
    return [c for c in previous if c.type not in types]


def put(previous: Sequence[Condition], new: Sequence[Condition], now: str) -> list[Condition]:
    """``previous`` with the conditions ``new`` set (timed by the rule) and every other type kept."""
    return others(new, previous) + with_times(new, previous, now)


def put_wire(
    stored: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    now: str,
    drop: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Wire-form conditions: ``stored`` with each of ``new`` put in its type's place (appended when the
    type is new; its lastTransitionTime by the rule) and the types in ``drop`` removed; the others kept
    as they are, in their order (a status writer that compares lists sees no change from the order)."""
    by_type = {c["type"]: c for c in new}
    out: list[dict[str, Any]] = []
    for c in stored:
        kind = c.get("type")
        if kind in drop:
            continue
        if kind in by_type:
            out.append(_timed(c, by_type.pop(kind), now))
        else:
            out.append(dict(c))
    out += [_timed(None, c, now) for c in by_type.values()]
    return out


def _timed(old: Mapping[str, Any] | None, new: Mapping[str, Any], now: str) -> dict[str, Any]:
    old = old or {}
    when = transition_time(old.get("status"), old.get("lastTransitionTime"), new["status"], now)
    return dict(new, lastTransitionTime=when)
