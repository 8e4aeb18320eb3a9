"""Validate: everything the CRD schema cannot check, against the engine's catalog and what is applied.

Runs first and changes nothing: on any problem it raises InvalidSpec, and ``run.reconcile`` reports it
(status Failed/Invalid, a Warning Event) without a single child being touched.
"""

from __future__ import annotations

from kubetrove.datastores.registry import REGISTRY
from kubetrove.datastores.validation import validate_spec
from kubetrove.k8s.kinds import STATEFULSET
from kubetrove.reconcile.applied import applied_spec
from kubetrove.reconcile.context import Context
from kubetrove.reconcile.errors import InvalidSpec


async def observe(ctx: Context) -> None:
    """Look up the engine strategy and read the live StatefulSet (the record of what is applied)."""
    ctx.store = REGISTRY[ctx.spec.datastore.type]
    ctx.live_statefulset = await ctx.deps.kube.get(STATEFULSET, ctx.namespace, ctx.names.statefulset)
    ctx.previous = applied_spec(ctx.live_statefulset, type(ctx.spec))


def check(ctx: Context) -> None:
    """Raise InvalidSpec naming every problem (pure: no I/O)."""
    problems = validate_spec(ctx.spec, ctx.previous)
    if problems:
        raise InvalidSpec(problems)


async def validate(ctx: Context) -> None:
    """The Validate phase."""
    await observe(ctx)
    check(ctx)
