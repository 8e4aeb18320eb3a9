"""Client TLS of the engine (``spec.tls``): its certificate, the credentials Secret's TLS keys, TLSReady.

The certificate comes from one of two places, and the engine never sees which:

- the installation's CA (the agents' CA, handlers/agent_tls.py): issued by the operator for the client
  Services (``<name>-rw``, ``<name>-ro``, in-namespace and FQDN) and every member's headless name, renewed
  by the same rule as the agent's (``issued_tls_material``: 30 days before its year ends, or when the CA or
  the names change);
- ``spec.tls.secretName``: the user's Secret (``tls.crt``, ``tls.key``, optional ``ca.crt``), checked
  (PEM, the key matches the certificate) and COPIED into the operator's Secret. Copying keeps one Secret
  name in the pod template whatever the source, and lets the operator add the combined PEM MongoDB needs
  (``certificateKeyFile``). A renewed user certificate reaches the copy at the next reconcile.

Either way the data lands in ``<name>-tls`` (applied with the other children, mounted read-only into the
engine container at ``names.ENGINE_TLS_DIR``); the kubelet swaps renewed files in place, so the pod
template never changes on renewal. What the engine does with a renewed file is its own (PostgreSQL
re-reads at reload; MySQL/MariaDB/MongoDB at restart, or on their reload statements): docs/security.md.

An unusable ``spec.tls`` (a missing Secret or key, a key that is not the certificate's, no CA to issue
from) is reported before anything is written: TLSReady=False and a Warning Event naming the field, then
NotReady (retried, so a Secret created afterwards is picked up). Nothing changes meanwhile.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from kubetrove.api.common import TLSMode
from kubetrove.api.status import ConditionType, ResourceStatus
from kubetrove.k8s import events
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.secrets import decode_secret
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context, need
from kubetrove.reconcile.errors import NotReady
from kubetrove.render.names import TLS_CA_KEY, TLS_CERT_KEY, TLS_KEY_KEY, TLS_PEM_KEY, ChildNames
from kubetrove.runtime import certs
from kubetrove.runtime.certs import KeyPair

# The credentials Secret's TLS keys: the CA to verify the engine with, and an URI asking for verified TLS
# to the read-write Service (its CA path names the ``ca.crt`` key: mount the Secret and point at it).
CONNECTION_CA_KEY = TLS_CA_KEY
CONNECTION_URI_KEY = "tls-uri"
RETRY_SECONDS = 30

# A certificate is replaced when it has less than this left (issued for a year: certs.VALIDITY), when the
# installation's CA changed, or when it names other hosts; the agent reads the renewed files without a
# restart (the pod template does not change). The same rule renews the engine's (phases/tls.py).
RENEW_BEFORE = datetime.timedelta(days=30)


def agent_tls_hosts(names: ChildNames, namespace: str) -> list[str]:
    """Every member's DNS name through the headless Service: what the operator verifies (members.py)."""
    domain = f"{names.headless_service}.{namespace}.svc"
    return [f"*.{domain}", f"*.{domain}.cluster.local"]


def issued_tls_material(
    ca: KeyPair,
    hosts: list[str],
    have: Mapping[str, str],
    now: datetime.datetime,
    *,
    also_client: bool = False,
) -> dict[str, str]:
    """A TLS Secret's data (certificate, key, CA): ``have`` when it still holds a certificate of ``ca``
    for ``hosts`` valid beyond ``RENEW_BEFORE``, else a new key and certificate (``also_client``: usable
    as a client certificate too, certs.sign)."""
    cert, key, ca_pem = (have.get(k, "") for k in (TLS_CERT_KEY, TLS_KEY_KEY, TLS_CA_KEY))
    try:
        keep = (
            bool(cert and key)
            and ca_pem == ca.cert.decode()
            and certs.issued_by(cert.encode(), ca.cert)
            and certs.dns_names(cert.encode()) == hosts
            and certs.not_after(cert.encode()) - now > RENEW_BEFORE
        )
    except ValueError:  # not a certificate (edited by hand): replaced
        keep = False
    if keep:
        return {TLS_CERT_KEY: cert, TLS_KEY_KEY: key, TLS_CA_KEY: ca_pem}
    leaf = certs.sign(ca, hosts, now=now, also_client=also_client)
    return {TLS_CERT_KEY: leaf.cert.decode(), TLS_KEY_KEY: leaf.key.decode(), TLS_CA_KEY: ca.cert.decode()}


def engine_tls_hosts(names: ChildNames, namespace: str) -> list[str]:
    """What the engine's certificate names: the client Services (short, namespaced and FQDN forms; the
    first, ``<name>-rw.<ns>.svc``, is the common name) and every member through the headless Service."""
    hosts: list[str] = []
    for svc in (names.rw_service, names.ro_service):
        hosts += [f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local", f"{svc}.{namespace}", svc]
    return hosts + agent_tls_hosts(names, namespace)


class TLSUnusable(Exception):
    """``spec.tls`` cannot be served as written: ``field`` and a message naming the cause."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def user_material(data: Mapping[str, str], secret: str) -> dict[str, str]:
    """The engine TLS data from the user's Secret ``secret`` (decoded ``data``), or TLSUnusable.

    Without ``ca.crt`` the certificate file itself is the CA file (right for a self-signed certificate;
    MongoDB needs some CA file)."""
    field = "spec.tls.secretName"
    missing = [k for k in (TLS_CERT_KEY, TLS_KEY_KEY) if not data.get(k)]
    if missing:
        raise TLSUnusable(field, f"Secret {secret} lacks key(s) {', '.join(missing)}")
    cert, key = data[TLS_CERT_KEY], data[TLS_KEY_KEY]
    try:
        matches = certs.key_matches(cert.encode(), key.encode())
        key = certs.pkcs8(key.encode()).decode()  # Cassandra reads PKCS#8 only; every engine reads it
    except ValueError:
        raise TLSUnusable(
            field, f"Secret {secret}: {TLS_CERT_KEY} or {TLS_KEY_KEY} is not an unencrypted PEM of its kind"
        ) from None
    if not matches:
        raise TLSUnusable(field, f"Secret {secret}: {TLS_KEY_KEY} is not the key of {TLS_CERT_KEY}")
    return {TLS_CERT_KEY: cert, TLS_KEY_KEY: key, TLS_CA_KEY: data.get(TLS_CA_KEY) or cert}


def with_pem(material: Mapping[str, str]) -> dict[str, str]:
    """``material`` plus the certificate and key in one PEM (``TLS_PEM_KEY``)."""
    cert, key = material[TLS_CERT_KEY], material[TLS_KEY_KEY]
    return {**material, TLS_PEM_KEY: cert.rstrip("\n") + "\n" + key.rstrip("\n") + "\n"}


async def _material(ctx: Context) -> dict[str, str]:
    spec = need(ctx.spec.tls, "spec.tls")
    kube = ctx.deps.kube
    if spec.secret_name:
        secret = await kube.get(SECRET, ctx.namespace, spec.secret_name)
        if secret is None:
            raise TLSUnusable("spec.tls.secretName", f"Secret {spec.secret_name} does not exist")
        return user_material(decode_secret(secret), spec.secret_name)
    ca = ctx.deps.agent_ca
    if ca is None:
        raise TLSUnusable(
            "spec.tls.secretName",
            "agent TLS is off in this installation, so there is no CA to issue a certificate from: "
            "name a Secret of yours",
        )
    have = decode_secret(await kube.get(SECRET, ctx.namespace, ctx.names.engine_tls_secret))
    hosts = engine_tls_hosts(ctx.names, ctx.namespace)
    return issued_tls_material(ca, hosts, have, ctx.deps.clock(), also_client=True)


async def engine_tls(ctx: Context) -> dict[str, str] | None:
    """The engine TLS Secret's data for ``spec.tls``, None when disabled; an unusable spec.tls is
    reported (condition, Event) and raises NotReady."""
    if ctx.spec.tls_mode is TLSMode.DISABLED:
        return None
    try:
        material = with_pem(await _material(ctx))
    except TLSUnusable as exc:
        await _refuse(ctx, exc)
        raise NotReady(str(exc), RETRY_SECONDS) from None
    spec = need(ctx.spec.tls, "spec.tls")
    ctx.tls_source = f"Secret {spec.secret_name}" if spec.secret_name else "the installation's CA"
    ctx.tls_expiry = certs.not_after(material[TLS_CERT_KEY].encode())
    return material


async def _refuse(ctx: Context, exc: TLSUnusable) -> None:
    deps = ctx.deps
    ctx.logger.warning("spec.tls unusable: %s", exc)
    previous = ctx.previous_status or ResourceStatus()
    gen = ctx.parsed.ref.generation
    ctx.status = st.with_condition(
        previous, ConditionType.TLS_READY, False, "TLSUnusable", str(exc), gen, deps.clock()
    )  # written by the runner as the phase raises
    await events.post_quietly(
        deps.kube, ctx.parsed.ref, events.EventType.WARNING, "TLSUnusable", str(exc), "Reconcile", ctx.logger,
        deps.reporting_instance,
    )  # fmt: skip


def connection_data(
    ctx: Context, credentials: Mapping[str, str], material: Mapping[str, str]
) -> dict[str, str]:
    """The credentials Secret's TLS keys: the CA, and the admin's URI asking for verified TLS to the
    read-write Service (no URI where the engine has no URI form or no admin password)."""
    store = need(ctx.store, "store")
    data = {CONNECTION_CA_KEY: material[TLS_CA_KEY]}
    container = store.container(ctx.spec.datastore.version)
    password = credentials.get(container.admin_password_key, "")
    host = f"{ctx.names.rw_service}.{ctx.namespace}.svc"
    uri = store.client.uri(
        container.admin_user, password, host, store.ports[0].number, tls_ca=CONNECTION_CA_KEY
    )
    if uri and password:
        data[CONNECTION_URI_KEY] = uri
    return data


async def connection_keys(
    ctx: Context, credentials: Mapping[str, str], material: Mapping[str, str] | None
) -> None:
    """Write the credentials Secret's TLS keys when they differ; remove them when TLS is disabled."""
    want = connection_data(ctx, credentials, material) if material is not None else {}
    patch: dict[str, Any] = {}
    for key in (CONNECTION_CA_KEY, CONNECTION_URI_KEY):
        if key in want and credentials.get(key) != want[key]:
            patch.setdefault("stringData", {})[key] = want[key]
        elif key not in want and key in credentials:
            patch.setdefault("data", {})[key] = None
    if patch:
        await ctx.deps.kube.patch(SECRET, ctx.namespace, ctx.names.credentials_secret, patch)
        ctx.logger.info("Updated the TLS keys of Secret %s", ctx.names.credentials_secret)


def _stamp(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def tls_ready(ctx: Context) -> None:
    """The TLSReady phase: what the engine serves and until when (on the computed status); none when
    spec.tls is disabled."""
    current = need(ctx.status, "status")
    mode = ctx.spec.tls_mode
    if mode is TLSMode.DISABLED:
        kept = [c for c in current.conditions if c.type != ConditionType.TLS_READY]
        ctx.status = current.model_copy(update={"conditions": kept})
        return
    expiry = need(ctx.tls_expiry, "TLS expiry")
    plaintext = "refused" if mode is TLSMode.REQUIRED else "accepted"
    message = (
        f"serves TLS ({mode.value}: plaintext {plaintext}) with a certificate from {ctx.tls_source}, "
        f"valid until {_stamp(expiry)}"
    )
    gen, now = ctx.parsed.ref.generation, ctx.deps.clock()
    ctx.status = st.with_condition(current, ConditionType.TLS_READY, True, "Serving", message, gen, now)
