"""The resizer's pure part: when a claim needs its volume grown, and the status patches that say so.

KCM's expand controller leaves claims whose PV no in-tree plugin expands (a `local` PV) to an external
resizer ("waiting for an external controller to expand this PVC"); the provisioner is that resizer for
its image-backed class. The status it writes follows kubernetes-csi/external-resizer for Kubernetes
1.34 (RecoverVolumeExpansionFailure is GA there): first Resizing=True with allocatedResources and
allocatedResourceStatuses[storage]=ControllerResizeInProgress, then, the filesystem being grown online
by the same step, status.capacity set, the resize conditions dropped and the storage status removed.
Patches are JSON merge patches: ``None`` deletes a key, a list replaces the old one whole.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

RESIZE_CONDITIONS = ("Resizing", "FileSystemResizePending")


class Step(Enum):
    """What a bound claim of the class needs."""

    NOTHING = "nothing"
    GROW = "grow"  # the claim asks for more than the volume has
    FINISH = "finish"  # the volume has it, the claim's status does not say so yet (a pass cut short)


def step(requested: int, volume: int, claim_capacity: int | None) -> Step:
    """The next step for a claim asking for `requested` bytes of a volume of `volume` bytes whose status
    says `claim_capacity`. Never shrinks: a request below the volume's size is ignored (the API server
    refuses shrinking requests anyway)."""
    if requested > volume:
        return Step.GROW
    if claim_capacity is not None and claim_capacity < volume:
        return Step.FINISH
    return Step.NOTHING


def _other_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") not in RESIZE_CONDITIONS]


def resizing_patch(conditions: list[dict[str, Any]], size: str, now: str) -> dict[str, Any]:
    """The claim's status while its volume grows to `size` (a quantity string)."""
    resizing = {"type": "Resizing", "status": "True", "lastTransitionTime": now}
    return {
        "status": {
            "conditions": [*_other_conditions(conditions), resizing],
            "allocatedResources": {"storage": size},
            "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
        }
    }


def finished_patch(conditions: list[dict[str, Any]], size: str) -> dict[str, Any]:
    """The claim's status once its volume and filesystem have `size`."""
    return {
        "status": {
            "capacity": {"storage": size},
            "conditions": _other_conditions(conditions) or None,
            "allocatedResources": {"storage": size},
            "allocatedResourceStatuses": {"storage": None},
        }
    }
