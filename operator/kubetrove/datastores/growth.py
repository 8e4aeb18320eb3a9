"""Storage autogrow, decided: a pure function of the spec, the claims and the members' measured volumes.

No I/O, clock or randomness: ``kubetrove/autogrow.py`` reads the PVCs, the StorageClass, the pods and
the agents' figures, calls ``plan`` and ``restarts``, and carries out what they return.

The rules (docs/operations.md, "Autogrow"):

- A member's fill is df's Use%: used / (used + available); what root keeps in reserve the engine cannot
  write. A member without figures (its agent did not answer) does not count.
- The volumes' size now is the largest of ``spec.storage.size``, ``status.storage.size`` (what autogrow
  decided before) and every claim's request. Growth starts from there: every member's claim grows to
  the same size, the largest needed, so members stay interchangeable (a replica must hold what the
  primary holds).
- One growth at a time: while a claim is below the size decided, its capacity (``status.capacity``)
  has not reached its request yet, or a member's measured filesystem is still well below its claim's
  capacity (``FS_SHARE``: not resized yet, or a figure from before the growth), nothing more is decided
  (``WAIT``): an expansion in flight never stacks, and the next decision sees the filesystem it produced.
- Grow when some member's fill is at or above ``threshold``: to current + increment (a quantity, or a
  percentage of current), rounded up to a whole MiB, capped at ``maximum``. Never shrinks, never
  exceeds ``maximum``. At ``maximum`` already: ``MAXIMUM`` (the caller reports it once).
- A StorageClass known not to allow expansion: ``REFUSED`` instead of a growth the API server would
  refuse every time. Unknown (unreadable): tried, and the API server's answer is the error.
- After a growth completed on a member listed as full when it was decided, a member whose engine is not
  running is restarted once (``restarts``): an engine that stopped on a full disk only starts again on
  the larger filesystem when its container starts again, and the kubelet's back-off may take minutes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from kubetrove.api.common import Autogrow
from kubetrove.datastores.quantity import parse_quantity

MI = 2**20
GI = 2**30
# A filesystem reported smaller than this share of its claim's capacity has not grown to it yet (the
# kubelet resizes it after the volume), or the figure predates the growth: it is waited for, never
# taken for a full volume of the new size. ext4 and xfs keep about 2-5 % for themselves.
FS_SHARE = Fraction(9, 10)


class Action(enum.StrEnum):
    """What ``plan`` decided."""

    NONE = "None"  # every measured member is below the threshold (or nothing is measured)
    GROW = "Grow"  # request ``Plan.size`` on every member's claim
    WAIT = "Wait"  # an expansion is in flight: decide nothing until it completed
    MAXIMUM = "Maximum"  # over the threshold, but the volumes are already at the maximum
    REFUSED = "Refused"  # over the threshold, and the StorageClass does not allow expansion


# The StorageAutogrow condition's reason for each action (True: autogrow can still act).
REASONS: dict[Action, tuple[bool, str]] = {
    Action.NONE: (True, "BelowThreshold"),
    Action.GROW: (True, "Growing"),
    Action.WAIT: (True, "ExpansionInProgress"),
    Action.MAXIMUM: (False, "MaximumReached"),
    Action.REFUSED: (False, "ExpansionNotAllowed"),
}


@dataclass(frozen=True)
class Claim:
    """One member's data PVC: its request (``spec.resources.requests.storage``) and its capacity
    (``status.capacity.storage``: None while unbound)."""

    requested: str
    capacity: str | None = None


@dataclass(frozen=True)
class Fill:
    """One member's data volume as its agent measured it (df's Used and Avail, in bytes)."""

    used_bytes: int
    available_bytes: int
    capacity_bytes: int | None = None  # the filesystem's size (df's Size), when known

    @property
    def ratio(self) -> float | None:
        room = self.used_bytes + self.available_bytes
        return self.used_bytes / room if room > 0 else None


@dataclass(frozen=True)
class Plan:
    """The decision: what to do, the size (``GROW``: the new one; else the current one), which member
    crossed the threshold (the fullest), every member at or over it, and why, in words."""

    action: Action
    size: str
    message: str
    current: str = ""  # the volumes' size when it was decided (GROW: what they grow from)
    member: str | None = None
    full: tuple[str, ...] = ()
    pending: tuple[str, ...] = field(default=())  # claims still below ``size`` (to be patched)

    @property
    def condition(self) -> tuple[bool, str]:
        """(status, reason) of the StorageAutogrow condition."""
        return REASONS[self.action]


def _biggest(sizes: Collection[str]) -> str:
    """The largest of ``sizes`` (its text as written; the first one among equals)."""
    return max(sizes, key=parse_quantity)


def format_size(value: Fraction) -> str:
    """``value`` bytes rounded up to a whole MiB, written in Gi when it is whole Gi, else in Mi."""
    mib = math.ceil(value / MI)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def increment_bytes(increment: str, current: Fraction) -> Fraction:
    """One growth step in bytes: a percentage of ``current``, or a quantity."""
    if increment.endswith("%"):
        return current * int(increment[:-1]) / 100
    return parse_quantity(increment)


def next_size(current: str, autogrow: Autogrow) -> str:
    """current + increment, rounded up to a whole MiB, capped at the maximum (its text as written)."""
    base = parse_quantity(current)
    grown = base + increment_bytes(autogrow.increment, base)
    if grown >= parse_quantity(autogrow.maximum):
        return autogrow.maximum
    return format_size(grown)


def wanted_size(size: str, decided: str | None) -> str:
    """The size the volumes must have: ``spec.storage.size`` or what autogrow decided, the larger
    (a user raising the spec past the decided size wins; lowering it shrinks nothing)."""
    return _biggest([size] + ([decided] if decided else []))


def plan(
    size: str,
    autogrow: Autogrow,
    decided: str | None,
    claims: Mapping[str, Claim],
    fills: Mapping[str, Fill],
    expandable: bool | None = None,
) -> Plan:
    """Decide one autogrow step (the module docstring has the rules).

    ``size``: spec.storage.size; ``decided``: status.storage.size; ``claims``: each member's PVC (members
    without one yet are left out); ``fills``: each member's measured volume (unmeasured ones left out);
    ``expandable``: the StorageClass's allowVolumeExpansion (None: unknown).
    """
    wanted = wanted_size(size, decided)
    current = _biggest([wanted] + [c.requested for c in claims.values()])
    ratios = {pod: r for pod, f in fills.items() if (r := f.ratio) is not None}
    limit = autogrow.threshold / 100
    full = sorted((pod for pod, r in ratios.items() if r >= limit), key=lambda p: (-ratios[p], p))
    pending = tuple(
        sorted(p for p, c in claims.items() if parse_quantity(c.requested) < parse_quantity(current))
    )
    expanding = sorted(
        p
        for p, c in claims.items()
        if c.capacity is not None and parse_quantity(c.capacity) < parse_quantity(c.requested)
    )
    unresized = sorted(
        p
        for p, f in fills.items()
        if f.capacity_bytes is not None
        and (c := claims.get(p)) is not None
        and c.capacity is not None
        and p not in expanding
        and f.capacity_bytes < parse_quantity(c.capacity) * FS_SHARE
    )
    fullest = full[0] if full else None
    over = ", ".join(f"{p} {ratios[p]:.0%}" for p in full)
    common: dict[str, Any] = {"member": fullest, "full": tuple(full), "pending": pending, "current": current}
    if pending or expanding or unresized:
        waiting = ", ".join(
            [f"{p} requested below {current}" for p in pending]
            + [f"{p} expanding" for p in expanding]
            + [f"{p}'s filesystem not grown yet" for p in unresized]
        )
        return Plan(Action.WAIT, current, f"expansion to {current} in progress: {waiting}", **common)
    if not full:
        if not ratios:
            return Plan(Action.NONE, current, f"no member's volume measured yet (size {current})", **common)
        return Plan(
            Action.NONE,
            current,
            f"every measured data volume below {autogrow.threshold}% "
            f"(size {current}, maximum {autogrow.maximum})",
            **common,
        )
    if expandable is False:
        return Plan(
            Action.REFUSED,
            current,
            f"data volume at or over {autogrow.threshold}%: {over}; the StorageClass does not allow volume "
            "expansion (allowVolumeExpansion)",
            **common,
        )
    if parse_quantity(current) >= parse_quantity(autogrow.maximum):
        return Plan(
            Action.MAXIMUM,
            current,
            f"data volume at or over {autogrow.threshold}%: {over}; "
            f"already at the maximum {autogrow.maximum}",
            **common,
        )
    target = next_size(current, autogrow)
    pending = tuple(sorted(claims))
    return Plan(
        Action.GROW,
        target,
        f"data volume at or over {autogrow.threshold}%: {over}; growing {current} -> {target}",
        member=fullest,
        full=tuple(full),
        pending=pending,
        current=current,
    )


def restarts(
    grown_to: str,
    full: Collection[str],
    restarted: Collection[str],
    claims: Mapping[str, Claim],
    engine_running: Mapping[str, bool],
) -> list[str]:
    """Members to restart after the growth to ``grown_to``: listed as ``full`` when it was decided, not
    restarted for it yet, their claim's capacity has reached ``grown_to`` (the filesystem is larger), and
    their engine container is not running and ready (``engine_running`` False; a member without a pod is
    left out)."""
    target = parse_quantity(grown_to)
    out = []
    for pod in sorted(full):
        claim = claims.get(pod)
        if pod in restarted or claim is None or claim.capacity is None:
            continue
        if parse_quantity(claim.capacity) >= target and engine_running.get(pod) is False:
            out.append(pod)
    return out
