"""TLS between the operator and the agents: the installation's CA and the operator's client certificate.

Why a CA in a Secret (unlike the admission webhook's per-start CA, runtime/certs.py): agents' server
certificates live in their pods for a year and must outlive operator restarts, so the CA that signs them,
and that the operator trusts, must too. The operator creates it once, in its own namespace, and reads it
at every start (``KUBETROVE_AGENT_CA_SECRET``, default ``kubetrove-agent-ca``); two instances starting
together race on the create and the loser reads the winner's (409 is expected, never forced).

The operator's client certificate (common name ``kubetrove-operator``, signed by that CA) is made at
start, kept in a directory only this process reads (``load_cert_chain`` takes files), and renewed in
place on the same SSLContext before it expires, so a long-running operator never presents an expired
one. Agents accept their API (``/v1``) only with a certificate of this CA, plus the bearer token.

Invariants: the CA's private key never leaves the operator's namespace Secret and this process; the
per-database Secrets carry the CA certificate only (reconcile/phases/credentials.py).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.port import Kube
from kubetrove.k8s.secrets import decode_secret
from kubetrove.render.names import LABEL_MANAGED_BY, MANAGED_BY, TLS_CA_KEY
from kubetrove.runtime import certs
from kubetrove.runtime.certs import KeyPair

CA_KEY_KEY = "ca.key"
CA_VALIDITY = datetime.timedelta(days=3650)  # agents' certificates (a year) are renewed within it
CLIENT_NAME = "kubetrove-operator"
RENEW_CHECK_SECONDS = 86400.0
RENEW_BEFORE = datetime.timedelta(days=30)
log = logging.getLogger(__name__)


class AgentCAError(Exception):
    """The CA Secret exists but does not hold a usable CA (named, so an operator can fix or delete it)."""


def ca_secret(namespace: str, name: str, ca: KeyPair) -> dict[str, Any]:
    """The CA Secret's manifest (not owned by anything: it outlives every database and the release)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
        "type": "Opaque",
        "stringData": {TLS_CA_KEY: ca.cert.decode(), CA_KEY_KEY: ca.key.decode()},
    }


def _parse(data: dict[str, str], namespace: str, name: str) -> KeyPair:
    cert, key = data.get(TLS_CA_KEY, ""), data.get(CA_KEY_KEY, "")
    where = f"Secret {namespace}/{name}"
    if not cert or not key:
        raise AgentCAError(f"{where} lacks {TLS_CA_KEY} or {CA_KEY_KEY}: delete it to have a new CA made")
    ca = KeyPair(cert.encode(), key.encode())
    try:
        certs.sign(ca, ["probe.invalid"], validity=datetime.timedelta(minutes=1))  # the key signs
    except ValueError as exc:
        raise AgentCAError(f"{where} does not hold a usable CA ({exc}): delete it to have one made") from exc
    return ca


async def load_or_create_ca(kube: Kube, namespace: str, name: str) -> KeyPair:
    """The installation's agent CA: read from its Secret, or made and stored when there is none."""
    secret = await kube.get(SECRET, namespace, name)
    if secret is None:
        ca = certs.new_ca("kubetrove agents CA", validity=CA_VALIDITY)
        try:
            await kube.create(ca_secret(namespace, name, ca))
            log.info("Created the agents' CA in Secret %s/%s", namespace, name)
            return ca
        except Conflict:  # another instance made it first: use theirs
            secret = await kube.get(SECRET, namespace, name)
    return _parse(decode_secret(secret), namespace, name)


class ClientTLS:
    """The operator's client SSLContext for agents: trusts the CA, presents a certificate it signed."""

    def __init__(self, ca: KeyPair, directory: Path | None = None) -> None:
        self.ca = ca
        self._dir = directory or Path(tempfile.mkdtemp(prefix="kubetrove-agent-client-"))
        self.context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca.cert.decode())
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.expires = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self.renew()

    def renew(self, now: datetime.datetime | None = None) -> None:
        """A new client certificate, loaded into the same context (new connections present it)."""
        leaf = certs.sign(self.ca, [CLIENT_NAME], client=True, now=now)
        certfile, keyfile = certs.write(leaf, self._dir)
        self.context.load_cert_chain(certfile, keyfile)
        self.expires = certs.not_after(leaf.cert)

    def due(self, now: datetime.datetime) -> bool:
        return self.expires - now < RENEW_BEFORE

    async def renew_forever(self) -> None:
        """Check once a day; renew within ``RENEW_BEFORE`` of the expiry."""
        while True:
            await asyncio.sleep(RENEW_CHECK_SECONDS)
            if self.due(datetime.datetime.now(datetime.UTC)):
                self.renew()
                log.info("Renewed the operator's client certificate for agents (until %s)", self.expires)
