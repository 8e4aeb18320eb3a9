"""plan: what the loop of an ENGINE-ELECTED set (MongoDB) does this cycle. Pure; unit-tested on literals.

The set elects its own primary (https://www.mongodb.com/docs/manual/core/replica-set-elections/);
kubetrove manages which members belong to it and reports what the set says. Invariants:

- M1 kubetrove never promotes, fences or picks a primary here on its own. ``status.primary`` and the role
  labels follow the one member that *reports itself* primary; with none (an election, or a lost
  majority) or several (an old primary that has not yet seen the newer term) nothing is written or
  relabelled. The one exception is asked for: ``spec.primary`` (a switchover) names a member, and while
  the set is Healthy with another primary, that member is asked to stand for election
  (``replSetStepUp``); the set still votes, a member behind the majority is refused by the voters, and
  what the set then reports is what is recorded.
- M2 the wanted membership (every member of the StatefulSet, id = ordinal) is sent only to the member
  that reports itself primary: only a primary can reconfigure the set, and its agent changes at most
  one member per call (the rest of the set follows through heartbeats).
- M3 the set is created (``replSetInitiate``) only when no member reports being in a set and EVERY
  member answers, and only through the first member: initiating with members that cannot be reached
  fails anyway, and one fixed initiator avoids two members creating two sets. The agent initiates only
  a member whose engine says "not yet initialized", so a lost status never re-creates a set.
- M4 ``settled_primary`` (the primary that last confirmed the current membership complete) suppresses
  the call: a settled set is not asked again every cycle.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubetrove.clustering.snapshot import ClusterView, Role

PRIMARY, REPLICA = "primary", "replica"


class SetState(enum.StrEnum):
    """The set as this cycle saw it (the reason of the Replication condition)."""

    WAITING = "Waiting"  # no set yet, and not every member answers
    INITIATING = "Initiating"  # no set yet, every member answers: the first member creates it
    HEALTHY = "Healthy"  # one primary, every other member a secondary
    DEGRADED = "Degraded"  # one primary; some member is unreachable or not (yet) a secondary
    NO_PRIMARY = "NoPrimary"  # in a set, but nobody reports itself primary
    SEVERAL_PRIMARIES = "SeveralPrimaries"  # more than one member reports itself primary


@dataclass(frozen=True)
class Plan:
    """The state, the elected primary (None: unknown), whom to send the membership to, the labels."""

    state: SetState
    primary: str | None = None
    ask: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    step_up: str | None = None  # the member spec.primary names, asked to stand for election


def plan(view: ClusterView, settled_primary: str | None = None) -> Plan:
    """This cycle's plan for the set seen in ``view`` (see the invariants above)."""
    members = view.members
    primaries = [m.pod for m in members if m.reachable and m.role is Role.PRIMARY]
    if len(primaries) > 1:
        why = f"{', '.join(primaries)} report themselves primary; the stale one steps down on a newer term"
        return Plan(SetState.SEVERAL_PRIMARIES, reasons=(why,))
    if primaries:
        primary = primaries[0]
        roles = {m.pod: PRIMARY if m.pod == primary else REPLICA for m in members}
        reasons = tuple(_not_secondary(view, primary))
        state = SetState.DEGRADED if reasons else SetState.HEALTHY
        ask = None if settled_primary == primary else primary
        step_up = _switchover(view, primary) if state is SetState.HEALTHY else None
        if step_up is not None:
            reasons += (
                f"switchover: spec.primary asks {step_up} to stand for election (primary: {primary})",
            )
        return Plan(state, primary, ask, roles, reasons, step_up)
    if any(m.reachable and m.role is Role.REPLICA for m in members):
        why = "no member reports itself primary: the set is electing one, or a majority of it is down"
        return Plan(SetState.NO_PRIMARY, reasons=(why,))
    silent = [m.pod for m in members if not m.reachable]
    if silent or not members:
        return Plan(SetState.WAITING, reasons=(f"waiting for members to answer: {', '.join(silent)}",))
    first = members[0].pod
    return Plan(SetState.INITIATING, ask=first, reasons=(f"no replica set yet: {first} creates it",))


def _switchover(view: ClusterView, primary: str) -> str | None:
    """The member spec.primary names when it is a reachable secondary other than the primary."""
    wanted = view.wanted_primary
    if wanted is None or wanted == primary:
        return None
    target = next((m for m in view.members if m.pod == wanted), None)
    return wanted if target is not None and target.reachable and target.role is Role.REPLICA else None


def _not_secondary(view: ClusterView, primary: str) -> list[str]:
    out = []
    for m in view.members:
        if m.pod == primary:
            continue
        if not m.reachable:
            out.append(f"{m.pod} is unreachable")
        elif m.role is not Role.REPLICA:
            out.append(f"{m.pod} is not a secondary yet (role {m.role.value})")
    return out
