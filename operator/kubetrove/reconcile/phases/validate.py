"""Validate: everything the CRD schema cannot check, against the engine's catalog and what is applied.

Runs first and changes nothing: on any problem it raises InvalidSpec, and ``run.reconcile`` reports it
(status Failed/Invalid, a Warning Event) without a single child being touched.

Storage growth is checked against the StorageClass of each volume that would grow: a class without
``allowVolumeExpansion`` makes the API server refuse the PVC patch every time, so retrying could never
help; it is a refused spec. A class we cannot read (missing, or no RBAC to read it) is not held
against the spec: the Storage phase tries, and the API server's answer is the error.
"""

from __future__ import annotations

from kubetrove.datastores.quantity import parse_quantity
from kubetrove.datastores.registry import REGISTRY
from kubetrove.datastores.validation import Problem, validate_spec
from kubetrove.k8s.errors import ApiError
from kubetrove.k8s.kinds import PVC, STATEFULSET, STORAGE_CLASS
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.applied import applied_spec
from kubetrove.reconcile.context import Context
from kubetrove.reconcile.errors import InvalidSpec


async def observe(ctx: Context, statefulset: Obj | None = None) -> None:
    """Look up the engine strategy and read the live StatefulSet (the record of what is applied); a
    StatefulSet's watch event hands it in as ``statefulset``, and then it is not read again."""
    ctx.store = REGISTRY[ctx.spec.datastore.type]
    if statefulset is None:
        statefulset = await ctx.deps.kube.get(STATEFULSET, ctx.namespace, ctx.names.statefulset)
    ctx.live_statefulset = statefulset
    ctx.previous = applied_spec(ctx.live_statefulset, type(ctx.spec))


def check(ctx: Context) -> None:
    """Raise InvalidSpec naming every problem (pure: no I/O)."""
    problems = validate_spec(ctx.spec, ctx.previous)
    if problems:
        raise InvalidSpec(problems)


async def _expandable(ctx: Context, storage_class: str) -> bool | None:
    """The class's ``allowVolumeExpansion``, or None when the class cannot be read."""
    try:
        sc = await ctx.deps.kube.get(STORAGE_CLASS, None, storage_class)
    except ApiError as exc:  # e.g. 403: the operator's role may not read StorageClasses
        ctx.logger.warning("Cannot read StorageClass %s: %s", storage_class, exc)
        return None
    return None if sc is None else bool(sc.get("allowVolumeExpansion"))


async def check_expansion(ctx: Context) -> None:
    """Raise InvalidSpec when a volume must grow and its StorageClass does not allow expansion."""
    want = parse_quantity(ctx.spec.storage.size)
    if ctx.previous is None or want <= parse_quantity(ctx.previous.storage.size):
        return  # new, or not growing: nothing to expand (a shrink is refused by check)
    refused: dict[str, list[str]] = {}
    for ordinal in range(ctx.replicas):
        pvc = await ctx.deps.kube.get(PVC, ctx.namespace, ctx.names.data_claim(ordinal))
        if pvc is None:
            continue
        have = pvc["spec"].get("resources", {}).get("requests", {}).get("storage", "0")
        storage_class = pvc["spec"].get("storageClassName")
        if parse_quantity(have) < want and storage_class and await _expandable(ctx, storage_class) is False:
            refused.setdefault(storage_class, []).append(pvc["metadata"]["name"])
    problems = [
        Problem(
            "spec.storage.size",
            f"StorageClass {sc} does not allow volume expansion (allowVolumeExpansion), "
            f"so {', '.join(claims)} cannot grow to {ctx.spec.storage.size}",
        )
        for sc, claims in sorted(refused.items())
    ]
    if problems:
        raise InvalidSpec(problems)


async def validate(ctx: Context) -> None:
    """The Validate phase."""
    await observe(ctx)
    check(ctx)
    await check_expansion(ctx)
