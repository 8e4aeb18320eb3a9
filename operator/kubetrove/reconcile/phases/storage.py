"""Storage: grow the members' PVCs to ``spec.storage.size``, or to ``status.storage.size`` when autogrow
decided on more (kubetrove/autogrow.py; the larger wins, so a user raising the spec past it is obeyed and
lowering it shrinks nothing). Shrinking the spec was refused by Validate.

The StatefulSet's claim template cannot change (see apply.py), so each existing claim is patched.
Whether the volume really grows is up to the StorageClass (``allowVolumeExpansion``): Validate refuses
growth on a class that says no (validate.py); a class it could not read is tried here, and the API
server's refusal surfaces as the reconcile error.
"""

from __future__ import annotations

from kubetrove.datastores.growth import wanted_size
from kubetrove.datastores.quantity import parse_quantity
from kubetrove.k8s import ops
from kubetrove.k8s.kinds import PVC
from kubetrove.reconcile.context import Context


async def storage(ctx: Context) -> None:
    """The Storage phase."""
    stored = ctx.previous_status.storage if ctx.previous_status else None
    want = wanted_size(ctx.spec.storage.size, stored.size if stored else None)
    for ordinal in range(ctx.replicas):
        name = ctx.names.data_claim(ordinal)
        pvc = await ctx.deps.kube.get(PVC, ctx.namespace, name)
        if pvc is None:
            continue  # not created yet: the StatefulSet controller makes it with the template's size
        have = pvc["spec"].get("resources", {}).get("requests", {}).get("storage", "0")
        if parse_quantity(have) < parse_quantity(want):
            ctx.logger.info("Expanding PVC %s from %s to %s", name, have, want)
            await ops.expand_pvc(ctx.deps.kube, ctx.namespace, name, want)
