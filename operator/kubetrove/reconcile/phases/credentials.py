"""Credentials: the engine credentials Secret and the agent token Secret, generated once, never overwritten;
the agent's TLS certificate and the engine's client TLS certificate (spec.tls; phases/tls.py), issued from
the installation's CA and renewed before they expire (their Secrets are applied with the other children by
the Apply phase).

The values end up in ``ctx.inputs`` (what the Render phase renders from); the two Secrets are written
here, and only here (Apply leaves them alone).

Invariants:
- A value that exists in the Secret is used as it is: a user may rotate a password by editing the
  Secret, and the operator never writes it back. Only MISSING keys are generated and added.
- The credentials passed to render are exactly the engine's own keys (``secret_env`` of its
  container and the agent's ``admin_password_key``), so extra keys a user adds to the Secret cannot
  change the pod template (no roll).
- Secrets are created (POST), not server-side applied: a lost race (409) is retried, never forced.
- The credentials Secret's TLS keys (``ca.crt`` and the TLS URI, phases/tls.py) are the operator's own,
  derived from spec.tls: written when they differ, removed when TLS is disabled.
- A Secret kept by ``deletionPolicy.volumes: Retain`` (orphaned by ``run.delete``) still carries our
  labels: a resource created again under the same name adopts it (owner reference back), so the
  retained volumes open with the retained passwords. A Secret a user made (no ``managed-by`` label)
  is used, never adopted.
"""

from __future__ import annotations

from typing import Any

from kubetrove.k8s import ops
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.port import Obj
from kubetrove.k8s.secrets import decode_secret
from kubetrove.reconcile.context import Context, need, together
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases import tls
from kubetrove.reconcile.phases.tls import agent_tls_hosts, issued_tls_material
from kubetrove.render import RenderInputs, secrets
from kubetrove.render.names import (
    AGENT_TOKEN_KEY,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)


async def ensure_secret(ctx: Context, manifest: Obj, existing: Obj | None, generated: dict[str, str]) -> None:
    """Create ``manifest`` when ``existing`` is None, else add only the ``generated`` (missing) keys."""
    kube = ctx.deps.kube
    if existing is None:
        try:
            await kube.create(manifest)
        except Conflict:
            raise NotReady(f"Secret {manifest['metadata']['name']} appeared meanwhile; retrying", 1) from None
        ctx.logger.info("Created Secret %s", manifest["metadata"]["name"])
        return
    if (existing["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY:
        owner = manifest["metadata"]["ownerReferences"][0]
        if await ops.adopt(kube, SECRET, existing, owner):
            ctx.logger.info("Adopted the retained Secret %s", manifest["metadata"]["name"])
    if generated:
        patch: dict[str, Any] = {"stringData": generated}
        await kube.patch(SECRET, ctx.namespace, manifest["metadata"]["name"], patch)
        ctx.logger.info("Added missing keys %s to Secret %s", sorted(generated), manifest["metadata"]["name"])


async def _agent_tls(ctx: Context) -> dict[str, str] | None:
    ca = ctx.deps.agent_ca
    if ca is None:
        return None
    have = decode_secret(await ctx.deps.kube.get(SECRET, ctx.namespace, ctx.names.agent_tls_secret))
    return issued_tls_material(ca, agent_tls_hosts(ctx.names, ctx.namespace), have, ctx.deps.clock())


async def credentials(ctx: Context) -> None:
    """The Credentials phase: read or generate the Secrets' values, then write what was missing."""
    store = need(ctx.store, "store")
    kube = ctx.deps.kube
    keys = list(store.container(ctx.spec.datastore.version).credential_keys)
    creds_secret, token_secret = await together(
        kube.get(SECRET, ctx.namespace, ctx.names.credentials_secret),
        kube.get(SECRET, ctx.namespace, ctx.names.agent_token_secret),
    )
    have, have_token = decode_secret(creds_secret), decode_secret(token_secret)
    # Before anything is written: an unusable spec.tls changes nothing (tls.py says what it reports).
    engine_tls = await tls.engine_tls(ctx)
    new_creds = {k: ctx.deps.token() for k in keys if not have.get(k)}
    new_token = {} if have_token.get(AGENT_TOKEN_KEY) else {AGENT_TOKEN_KEY: ctx.deps.token()}
    values = {**have, **new_creds}
    ctx.inputs = RenderInputs(
        owner=ctx.parsed.ref,
        spec=ctx.spec,
        agent_image=ctx.deps.agent_image_for(
            ctx.spec.datastore.type, store.versions.get(ctx.spec.datastore.version)
        ),
        credentials={k: values[k] for k in keys},
        agent_token={**have_token, **new_token}[AGENT_TOKEN_KEY],
        image_registry=ctx.deps.image_registry,
        network_policy_from=ctx.deps.network_policy_from,
        agent_tls=await _agent_tls(ctx),
        engine_tls=engine_tls,
    )
    inputs = ctx.inputs

    async def engine_credentials() -> None:  # the Secret first: its TLS keys are patched into it
        await ensure_secret(ctx, secrets.credentials_secret(inputs), creds_secret, new_creds)
        await tls.connection_keys(ctx, {**have, **new_creds}, engine_tls)

    await together(
        engine_credentials(), ensure_secret(ctx, secrets.agent_token_secret(inputs), token_secret, new_token)
    )
