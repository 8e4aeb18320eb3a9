"""Render: every child manifest from the spec, the engine strategy and the Credentials phase's values.

Pure (kubetrove.render): the same inputs give the same manifests, so a pod template changes only when
the spec or an operator setting does (a change there rolls pods).
"""

from __future__ import annotations

from kubetrove.reconcile.context import Context, need
from kubetrove.render import render as render_manifests


async def render(ctx: Context) -> None:
    """The Render phase."""
    ctx.manifests = render_manifests(need(ctx.inputs, "inputs"), need(ctx.store, "store"))
