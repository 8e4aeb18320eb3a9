"""One function per ``kubectl trove`` command: read or write custom resources as the user.

Every call goes through ``kubetrove.k8s`` (the user's kubeconfig, so RBAC applies); a refusal by the
API server surfaces as ``kubetrove.k8s.errors.ApiError`` and ``main`` turns it into one line.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetrove.api.database_policy import PolicySpec
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, POLICY
from kubetrove.cli import manifests, views
from kubetrove.datastores import registry
from kubetrove.datastores.base import ClientInfo, Datastore, default_version
from kubetrove.k8s import kinds
from kubetrove.k8s.errors import ApiError
from kubetrove.k8s.port import Kube, Obj
from kubetrove.k8s.secrets import decode_secret
from kubetrove.policy.decide import NamedPolicy
from kubetrove.policy.offer import namespace_offer
from kubetrove.render.names import TLS_CA_KEY, USER_PASSWORD_KEY, ChildNames

EVENTS = kinds.EVENT


class CliError(Exception):
    """A refusal the user can act on; the message is the whole line printed."""


class Missing(CliError):
    """The named database or backup does not exist (the console answers 404)."""


@dataclass(frozen=True)
class Ctx:
    kube: Kube
    namespace: str  # the namespace commands act in
    all_namespaces: bool = False
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))


async def find(ctx: Ctx, name: str) -> Obj:
    """The DatabaseCluster or DatabaseInstance called ``name`` (clusters first)."""
    for kind in (CLUSTER, INSTANCE):
        obj = await ctx.kube.get(kinds.CUSTOM[kind.kind], ctx.namespace, name)
        if obj is not None:
            return obj
    raise Missing(f'no DatabaseInstance or DatabaseCluster "{name}" in namespace "{ctx.namespace}"')


async def _backups(ctx: Ctx, namespace: str | None) -> list[Obj]:
    return await ctx.kube.list(kinds.CUSTOM[BACKUP.kind], namespace)


async def list_databases(ctx: Ctx) -> list[dict[str, Any]]:
    """Every instance and cluster in the namespace (or all the user may list)."""
    ns = None if ctx.all_namespaces else ctx.namespace
    objs = [o for kind in (CLUSTER, INSTANCE) for o in await ctx.kube.list(kinds.CUSTOM[kind.kind], ns)]
    backups = await _backups(ctx, ns)
    rows = [views.list_row(o, views.backups_of(o, backups), ctx.now) for o in objs]
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


async def get_database(ctx: Ctx, name: str) -> dict[str, Any]:
    """One database in detail, with its recent Events (when the user may read them)."""
    obj = await find(ctx, name)
    backups = views.backups_of(obj, await _backups(ctx, ctx.namespace))
    uid = obj["metadata"].get("uid")
    try:
        events = [
            e
            for e in await ctx.kube.list(EVENTS, ctx.namespace)
            if (e.get("regarding") or {}).get("uid") == uid
        ]
    except Exception:
        events = []
    return views.detail(obj, backups, events, ctx.now)


def store_of(obj: Obj) -> Datastore:
    engine = ((obj.get("spec") or {}).get("datastore") or {}).get("type", "")
    try:
        return registry.get(engine)
    except ValueError:
        raise CliError(f"{obj['kind']} {obj['metadata']['name']}: unknown engine {engine!r}") from None


async def _secret_value(ctx: Ctx, secret: str, key: str) -> str:
    obj = await ctx.kube.get(kinds.SECRET, ctx.namespace, secret)
    if obj is None:
        raise CliError(f'Secret "{secret}" not found in namespace "{ctx.namespace}" (not created yet?)')
    values = decode_secret(obj)
    if key not in values:
        raise CliError(f'Secret "{secret}" has no key "{key}"')
    return values[key]


async def credentials(ctx: Ctx, name: str, user: str | None) -> dict[str, Any]:
    """The user's (or the administrator's) name, password and endpoints."""
    obj = await find(ctx, name)
    store = store_of(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names = ChildNames(name)
    if user is None:
        container = store.container(str(spec["datastore"]["version"]))
        secret = status.get("credentialsSecret") or names.credentials_secret
        if container.admin_user and container.admin_password_key:
            user, password = (
                container.admin_user,
                await _secret_value(ctx, secret, container.admin_password_key),
            )
        else:
            values = await _secret_value_all(ctx, secret)
            return {"secret": secret, "keys": values, "endpoints": status.get("endpoints") or {}}
        source = f"{secret}/{container.admin_password_key}"
    else:
        entry = next((u for u in spec.get("users") or [] if u.get("name") == user), None)
        if entry is None:
            listed = ", ".join(u.get("name", "") for u in spec.get("users") or []) or "none"
            raise CliError(f"{obj['kind']} {name} has no user {user!r} in spec.users (users: {listed})")
        ref = entry.get("passwordSecretRef")
        secret, key = (
            (ref["name"], ref.get("key", "password")) if ref else (names.user_secret(user), USER_PASSWORD_KEY)
        )
        password = await _secret_value(ctx, secret, key)
        source = f"{secret}/{key}"
    return {"user": user, "password": password, "secret": source, "endpoints": status.get("endpoints") or {}}


async def _secret_value_all(ctx: Ctx, secret: str) -> dict[str, str]:
    obj = await ctx.kube.get(kinds.SECRET, ctx.namespace, secret)
    if obj is None:
        raise CliError(f'Secret "{secret}" not found in namespace "{ctx.namespace}" (not created yet?)')
    return decode_secret(obj)


def _host_port(endpoint: str | None, what: str) -> tuple[str, int]:
    if not endpoint or ":" not in endpoint:
        raise CliError(f"{what} has no read-write endpoint yet (status.endpoints.readWrite)")
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


@dataclass(frozen=True)
class Connection:
    """Where and how to connect; ``password`` is never printed by ``connect``."""

    uri: str  # without the password
    user: str
    password: str
    host: str
    port: int
    database: str
    service: str  # the read-write Service (port-forward target)
    client: ClientInfo
    # spec.tls is not disabled: the CA (PEM) from the credentials Secret's ``ca.crt``; "" = plaintext.
    tls_ca: str = ""

    def shown(self) -> dict[str, Any]:
        """What ``connect`` prints."""
        return {
            "uri": self.uri,
            "user": self.user,
            "host": self.host,
            "port": self.port,
            "client": self.client.program,
            "passwordEnv": self.client.password_env or None,
            "tls": bool(self.tls_ca),
        }


async def connection(ctx: Ctx, name: str, user: str | None, database: str | None) -> Connection:
    """The read-write endpoint and login of ``name`` (the administrator's unless ``user``)."""
    obj = await find(ctx, name)
    store = store_of(obj)
    creds = await credentials(ctx, name, user)
    if "user" not in creds:
        raise CliError(f"{obj['kind']} {name}: the engine has no administrative login; use --user")
    host, port = _host_port((creds["endpoints"] or {}).get("readWrite"), f"{obj['kind']} {name}")
    client = store.client
    return Connection(
        uri=client.uri(creds["user"], "", host, port, database or ""),
        user=creds["user"],
        password=creds["password"],
        host=host,
        port=port,
        database=database or client.default_database,
        service=ChildNames(name).rw_service,
        client=client,
        tls_ca=await _tls_ca(ctx, obj),
    )


async def _tls_ca(ctx: Ctx, obj: Obj) -> str:
    """The CA a client verifies the engine with when spec.tls is not disabled ("" when it is)."""
    mode = ((obj.get("spec") or {}).get("tls") or {}).get("mode", "disabled")
    if mode == "disabled":
        return ""
    name = obj["metadata"]["name"]
    secret = (obj.get("status") or {}).get("credentialsSecret") or ChildNames(name).credentials_secret
    ca = (await _secret_value_all(ctx, secret)).get(TLS_CA_KEY, "")
    if not ca:
        raise CliError(
            f"{obj['kind']} {name}: spec.tls.mode is {mode} but Secret {secret} has no {TLS_CA_KEY} yet"
        )
    return ca


@contextmanager
def _client_tls(conn: Connection) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The client's TLS options and variables, the CA in a private temporary file while the client runs."""
    if not conn.tls_ca:
        yield [], {}
        return
    with tempfile.TemporaryDirectory(prefix="kubetrove-connect-") as tmp:
        ca = Path(tmp) / TLS_CA_KEY
        ca.write_text(conn.tls_ca)
        args = [a.format(ca=ca) for a in conn.client.tls_args]
        yield args, {k: v.format(ca=ca) for k, v in conn.client.tls_env.items()}


def run_client(conn: Connection, kubectl: str, namespace: str, local_port: int, env: dict[str, str]) -> int:
    """Port-forward the read-write Service and start the engine's client against it (in ``env``)."""
    program = shutil.which(conn.client.program)
    if program is None:
        raise CliError(f"{conn.client.program} is not installed; connect with: {conn.uri}")
    if shutil.which(kubectl) is None:
        raise CliError(f"{kubectl} is not on PATH (needed for the port-forward)")
    forward = subprocess.Popen(  # noqa: S603 (our argv; the user's own kubectl)
        [kubectl, "-n", namespace, "port-forward", f"svc/{conn.service}", f"{local_port}:{conn.port}"],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(local_port, forward)
        local = conn.client.uri(conn.user, "", "127.0.0.1", local_port, conn.database)
        fields = {"host": "127.0.0.1", "port": str(local_port), "user": conn.user, "database": conn.database}
        with _client_tls(conn) as (tls_args, tls_env):
            argv = [program, *tls_args, *(a.format(uri=local, **fields) for a in conn.client.args)]
            child = {**env, **tls_env}
            if conn.client.password_env:
                child[conn.client.password_env] = conn.password
            return subprocess.call(argv, env=child)  # noqa: S603 (the engine's client, our argv)
    finally:
        forward.terminate()


def _wait_listening(port: int, forward: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Until the port-forward accepts connections (kubectl prints before it listens on every address)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if forward.poll() is not None:
            raise CliError(f"kubectl port-forward exited with code {forward.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CliError(f"the port-forward to 127.0.0.1:{port} did not open within {timeout:.0f}s")


async def backup_now(ctx: Ctx, name: str, backup_name: str | None, method: str) -> Obj:
    """Create a DatabaseBackup of ``name`` now."""
    obj = await find(ctx, name)
    stamp = ctx.now.strftime("%Y%m%d%H%M%S")
    manifest = manifests.backup_manifest(obj, backup_name or f"{name}-{stamp}", method)
    return await ctx.kube.create(manifest)


async def restore(ctx: Ctx, backup: str, to: str, cluster: bool | None, dry_run: bool) -> Obj:
    """A new instance or cluster restored from ``backup`` (the source's engine, version and size)."""
    obj = await ctx.kube.get(kinds.CUSTOM[BACKUP.kind], ctx.namespace, backup)
    if obj is None:
        raise Missing(f'no DatabaseBackup "{backup}" in namespace "{ctx.namespace}"')
    phase = (obj.get("status") or {}).get("phase")
    if phase != "Completed":
        raise CliError(
            f"DatabaseBackup {backup} is {phase or 'not started'}: only a Completed backup restores"
        )
    src = obj["spec"]["source"]
    source = await ctx.kube.get(kinds.CUSTOM[src["kind"]], ctx.namespace, src["name"])
    try:
        manifest = manifests.restore_manifest(obj, source, to, cluster)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return manifest if dry_run else await ctx.kube.create(manifest)


async def switchover(ctx: Ctx, name: str, pod: str) -> Obj:
    """Ask for ``pod`` as primary (declarative: the clustering loop does it safely or says why not)."""
    obj = await find(ctx, name)
    if obj["kind"] != CLUSTER.kind:
        raise CliError(f"{name} is a DatabaseInstance: switchover needs a DatabaseCluster")
    members = [m.get("pod") for m in (obj.get("status") or {}).get("members") or []]
    if members and pod not in members:
        raise CliError(f"{pod} is not a member of {name} (members: {', '.join(str(m) for m in members)})")
    return await ctx.kube.patch(
        kinds.CUSTOM[CLUSTER.kind], ctx.namespace, name, manifests.switchover_patch(pod)
    )


_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """``--since``: "90s", "10m", "2h", "1d" or combinations like "1h30m" (kubectl's own forms)."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CliError(f'--since: "{text}" is not a duration like 30s, 10m, 2h or 1h30m')
    return sum(int(n) * _UNIT[u] for n, u in parts)


async def verify_report(ctx: Ctx, name: str, backup: str | None) -> dict[str, Any]:
    """The latest (or the named backup's) verification report."""
    obj = await find(ctx, name)
    backups = views.backups_of(obj, await _backups(ctx, ctx.namespace))
    chosen = (
        next((b for b in backups if b["metadata"]["name"] == backup), None)
        if backup
        else views.last_verified(backups)
    )
    if backup and chosen is None:
        raise CliError(f"no DatabaseBackup {backup!r} of {name}")
    report = views.verification(chosen)
    if report is None:
        raise CliError(f"{name} has no verified backup yet (spec.backup.verify schedules verifications)")
    return report


async def create(ctx: Ctx, request: manifests.CreateRequest, dry_run: bool = False) -> Obj:
    """A new instance or cluster (checked against the catalog first; the server validates the rest)."""
    check_catalog(request.engine, request.version)
    manifest = manifests.create_manifest(request)
    return manifest if dry_run else await ctx.kube.create(manifest)


async def delete(ctx: Ctx, name: str) -> Obj:
    """Delete the instance or cluster ``name`` (its finalizer removes what the operator made); the
    object as it was. Backups are separate resources and stay."""
    obj = await find(ctx, name)
    await ctx.kube.delete(kinds.CUSTOM[obj["kind"]], ctx.namespace, name)
    return obj


async def may(ctx: Ctx, verb: str, resource: str, name: str = "", group: str = "") -> bool:
    """Whether the API server would let the user ``verb`` the ``resource`` in ``ctx.namespace``
    (a SelfSubjectAccessReview: RBAC and every other authorizer answer, for the caller alone)."""
    review = {
        "apiVersion": kinds.SELF_SUBJECT_ACCESS_REVIEW.api_version,
        "kind": kinds.SELF_SUBJECT_ACCESS_REVIEW.kind,
        "spec": {
            "resourceAttributes": {
                "namespace": ctx.namespace, "verb": verb, "group": group,
                "resource": resource, "name": name,
            }
        },
    }  # fmt: skip
    reply = await ctx.kube.create(review)
    return bool((reply.get("status") or {}).get("allowed"))


def check_catalog(engine: str, version: str) -> None:
    """CliError unless the catalog offers ``engine`` ``version``."""
    offered = {(c["engine"], c["version"]) for c in catalog()}
    if (engine, version) not in offered:
        versions = ", ".join(sorted(v for e, v in offered if e == engine)) or "none"
        raise CliError(f"{engine} {version} is not in the catalog (versions: {versions})")


def catalog() -> list[dict[str, Any]]:
    """The engines and versions this operator offers (the operator's version catalog)."""
    return [
        {
            "engine": str(engine),
            "version": v.version,
            "image": v.image,
            "default": v.version == default_version(store.versions),
        }
        for engine, store in registry.REGISTRY.items()
        for v in store.versions.values()
    ]


async def namespace_catalog(ctx: Ctx) -> list[dict[str, Any]]:
    """The catalog as the namespace's DatabasePolicies see it (``namespace_offer``): only the versions
    the namespace may create, each with its tier and the policies that decide it. A user who may not
    read the policies or the namespace gets the operator's whole catalog, tier "unknown" (admission
    still decides: this view is advice, the webhook is the rule)."""
    try:
        items = await ctx.kube.list(kinds.CUSTOM[POLICY.kind], None)
        namespace = await ctx.kube.get(kinds.NAMESPACE, None, ctx.namespace)
    except ApiError as exc:
        if exc.status not in (401, 403, 404):
            raise
        return [{**row, "tier": "unknown", "policies": ""} for row in catalog()]
    policies = [
        NamedPolicy(p["metadata"]["name"], PolicySpec.model_validate(p.get("spec") or {})) for p in items
    ]
    labels = dict(((namespace or {}).get("metadata") or {}).get("labels") or {})
    offer = namespace_offer(policies, ctx.namespace, labels)
    tiers = {(str(v.engine), v.version): str(v.tier) for v in offer.versions}
    governed = ",".join(offer.policies)
    return [
        {**row, "tier": tiers[(row["engine"], row["version"])] if governed else "-", "policies": governed}
        for row in catalog()
        if (row["engine"], row["version"]) in tiers
    ]


async def wait_phase(ctx: Ctx, rtype: Any, name: str, done: tuple[str, ...], seconds: float) -> Obj:
    """Poll until the object's phase is one of ``done`` (``--wait``); CliError after ``seconds``."""
    last: Obj | None = None
    try:
        async with asyncio.timeout(seconds):
            while True:
                last = await ctx.kube.get(rtype, ctx.namespace, name)
                if last and (last.get("status") or {}).get("phase") in done:
                    return last
                await asyncio.sleep(2)
    except TimeoutError:
        phase = ((last or {}).get("status") or {}).get("phase") or "pending"
        raise CliError(f"{name}: still {phase} after {seconds:.0f}s") from None
