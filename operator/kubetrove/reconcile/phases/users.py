"""Users: create ``spec.databases`` and ``spec.users`` through the agent of the member that takes writes.

Invariants:
- Runs once the resource is Ready (after the Status phase); before that it raises NotReady, so kopf
  retries the whole (idempotent) reconcile until the members are up.
- Writes go to ONE member: the single pod of an instance, the pod labelled ``kubetrove.io/role=primary``
  in a cluster whose engine has a primary (replication carries them to the others), any ready member
  of an engine without one (a ring of equals shares its schema and auth tables).
- Passwords: the key named by ``passwordSecretRef``, else a Secret of our own (``<name>-user-<user>``),
  generated once and never overwritten (a user may rotate the password by editing it).
- What was applied is recorded in a StatefulSet annotation: database names, and per user an HMAC of
  its password and grants keyed with the agent token (never the password itself, and not guessable
  from the annotation without the token). A reconcile with nothing new makes no agent call at all.
- A ring (an engine whose databases carry a replication factor, Cassandra) also records the factor of
  each keyspace (``spec.databases[].replicationFactor``, else the ring size capped at three) and the
  factor of its auth keyspace (the ring size capped at three). A ring that grows changes both, so the
  push runs again: ``system_auth`` is raised first (a role stored on one node is a single point of login
  failure: the classic lockout), then every keyspace whose factor changed is altered (the agent repairs
  it so the new replicas hold the data).
- A user removed from the spec is dropped (it was created by kubetrove: it is in the record). A
  database removed from the spec is NOT dropped: the API promises that (``InstanceSpec.databases``),
  data is never deleted by editing a list; it only leaves the record.
- Any agent failure sets UsersReady=False with the agent's message and raises NotReady (retried).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from kubetrove.agent.protocol import Grant, Privilege
from kubetrove.api.common import User
from kubetrove.api.status import ConditionType, Phase
from kubetrove.datastores.base import HAMode
from kubetrove.datastores.validation import DEFAULT_MAX_REPLICATION_FACTOR, replication_factor
from kubetrove.k8s.kinds import SECRET, STATEFULSET
from kubetrove.k8s.pods import is_ready, is_terminating, ordinal
from kubetrove.k8s.port import Obj
from kubetrove.k8s.secrets import SecretValueError, secret_value
from kubetrove.members import Agent, AgentCallError
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context, need
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.credentials import ensure_secret
from kubetrove.render.names import LABEL_ROLE, ROLE_PRIMARY, USER_PASSWORD_KEY
from kubetrove.render.secrets import user_password_secret

APPLIED_USERS = "kubetrove.io/applied-users"
# Phases in which the resource has been Ready: a Degraded cluster or a roll still has a primary to write to
# (``target`` checks that member itself); Provisioning and Failed wait.
WRITABLE = (Phase.READY, Phase.DEGRADED, Phase.UPDATING)


def grants(user: User) -> list[Grant]:
    """The user's portable grants in the agent's wire form."""
    return [
        Grant(database=g.database, privileges=[Privilege(p.value) for p in g.privileges]) for g in user.grants
    ]


def fingerprint(key: str, password: str, user: User) -> str:
    """HMAC-SHA256 (keyed with the agent token) of what a PUT of ``user`` sends."""
    wire = json.dumps([password, [g.model_dump(mode="json") for g in grants(user)]], sort_keys=True)
    return hmac.new(key.encode(), wire.encode(), hashlib.sha256).hexdigest()


def recorded(sts: Obj) -> dict[str, Any]:
    """The record of what was applied ({"databases": [...], "users": {name: fingerprint}})."""
    raw = (sts["metadata"].get("annotations") or {}).get(APPLIED_USERS)
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    return {
        "databases": list(record.get("databases", [])),
        "users": dict(record.get("users", {})),
        **({"factors": dict(record["factors"])} if "factors" in record else {}),
        **({"ring": record["ring"]} if "ring" in record else {}),
    }


async def password(ctx: Context, user: User) -> str:
    """The password of ``user``: from its Secret reference, else generated once into our own Secret."""
    kube = ctx.deps.kube
    ref = user.password_secret_ref
    if ref is not None:
        value = secret_value(await kube.get(SECRET, ctx.namespace, ref.name), ref.key)
        if not value:
            raise NotReady(f"user {user.name}: no password in Secret {ref.name}, key {ref.key!r}", 30)
        if "\x00" in value:  # the agent refuses it too (protocol.UserRequest): say which Secret, here
            raise SecretValueError(
                f"Secret {ctx.namespace}/{ref.name}, key {ref.key!r}: the password holds a NUL"
            )
        return value
    name = ctx.names.user_secret(user.name)
    existing = await kube.get(SECRET, ctx.namespace, name)
    have = secret_value(existing, USER_PASSWORD_KEY)
    value = have or ctx.deps.token()
    manifest = user_password_secret(need(ctx.inputs, "inputs"), user.name, value)
    await ensure_secret(ctx, manifest, existing, {} if have else {USER_PASSWORD_KEY: value})
    return value


async def target(ctx: Context) -> Obj:
    """The member to write to (see the module docstring), or NotReady."""
    pods = await ctx.deps.members.pods(ctx.parsed.ref, ctx.spec.datastore.type)
    ready = sorted(
        (p for p in pods if ordinal(p) < ctx.replicas and is_ready(p) and not is_terminating(p)), key=ordinal
    )
    if ctx.is_cluster and need(ctx.store, "store").ha_mode is not HAMode.NO_PRIMARY:
        ready = [p for p in ready if p["metadata"].get("labels", {}).get(LABEL_ROLE) == ROLE_PRIMARY]
        if not ready:
            raise NotReady("no ready member is labelled primary yet: users and databases wait", 10)
    if not ready:
        raise NotReady("no ready member to create users and databases on", 10)
    return ready[0]


def _set_condition(ctx: Context, ok: bool, reason: str, message: str) -> None:
    """UsersReady on the computed status (the runner writes it once, after this phase)."""
    current = need(ctx.status, "status")
    gen, now = ctx.parsed.ref.generation, ctx.deps.clock()
    ctx.status = st.with_condition(current, ConditionType.USERS_READY, ok, reason, message, gen, now)


async def _push(
    ctx: Context, pod: Obj, record: dict[str, Any], desired: dict[str, Any], pw: dict[str, str]
) -> None:
    members, name = ctx.deps.members, pod["metadata"]["name"]
    factors: dict[str, int] = desired.get("factors", {})

    async def apply(agent: Agent) -> None:
        if "ring" in desired and record.get("ring") != desired["ring"]:
            await agent.ensure_ring_replication(desired["ring"])
        for db in desired["databases"]:
            if db not in record["databases"] or record.get("factors", {}).get(db) != factors.get(db):
                await agent.ensure_database(db, factors.get(db, 1))
        for user in ctx.spec.users:
            if record["users"].get(user.name) != desired["users"][user.name]:
                await agent.ensure_user(user.name, pw[user.name], grants(user))
        for gone in sorted(set(record["users"]) - set(desired["users"])):
            await agent.drop_user(gone)

    try:
        async with members.agents(need(ctx.inputs, "inputs").agent_token) as agents:
            await agents.call(name, members.url(ctx.namespace, pod), apply)
    except AgentCallError as exc:  # the agent's reply (or why there was none) is the message
        _set_condition(ctx, False, "AgentFailed", str(exc))
        raise NotReady(f"users and databases: {exc}", 15) from exc


async def users(ctx: Context) -> None:
    """The Users phase."""
    sts = need(ctx.live_statefulset, "live statefulset")
    record = recorded(sts)
    try:
        pw = {u.name: await password(ctx, u) for u in ctx.spec.users}
    except NotReady as exc:
        _set_condition(ctx, False, "PasswordMissing", str(exc))
        raise
    except SecretValueError as exc:  # names the Secret and key; retried: the user may fix the Secret
        _set_condition(ctx, False, "PasswordUnusable", str(exc))
        raise NotReady(str(exc), 30) from None
    key = need(ctx.inputs, "inputs").agent_token
    desired: dict[str, Any] = {
        "databases": sorted(d.name for d in ctx.spec.databases),
        "users": {u.name: fingerprint(key, pw[u.name], u) for u in ctx.spec.users},
    }
    if need(ctx.store, "store").replicated_databases:
        # The ring that runs: a refused scale-down keeps its nodes, and their keyspaces (phases/ring.py).
        size = ctx.running_members
        desired["factors"] = {d.name: replication_factor(d, size) for d in ctx.spec.databases}
        desired["ring"] = min(size, DEFAULT_MAX_REPLICATION_FACTOR)
    if record == desired:
        return
    if ctx.status is None or ctx.status.phase not in WRITABLE:
        _set_condition(ctx, False, "WaitingForMembers", "users and databases wait for Ready members")
        raise NotReady("users and databases wait until every member is ready", 10)
    try:
        pod = await target(ctx)
    except NotReady as exc:
        _set_condition(ctx, False, "WaitingForMembers", str(exc))
        raise
    ctx.logger.info(
        "Applying databases %s and users %s on %s", desired["databases"], sorted(pw), pod["metadata"]["name"]
    )
    await _push(ctx, pod, record, desired, pw)
    patch = {"metadata": {"annotations": {APPLIED_USERS: json.dumps(desired, sort_keys=True)}}}
    await ctx.deps.kube.patch(STATEFULSET, ctx.namespace, ctx.names.statefulset, patch)
    _set_condition(ctx, True, "Applied", f"{len(desired['databases'])} databases, {len(pw)} users")
