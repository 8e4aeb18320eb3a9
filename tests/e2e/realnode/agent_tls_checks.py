"""What a real database pod's agent accepts once the operator turned agent TLS on (the chart's default).

Checked from the host against the pod IP, the way the operator reaches it: only HTTPS is served; the
certificate is the database's own, signed by the installation's CA (the Secret the operator made in its
namespace) and valid for the member's DNS name; the health route needs no client certificate (the
kubelet's probes present none); the API refuses a caller without a client certificate of that CA even
with the right token, and a certificate of another CA is refused at the handshake.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import base_url, split_tls_name
from kubetrove.k8s.secrets import decode_secret
from kubetrove.render.names import AGENT_TOKEN_KEY, ANNOTATION_AGENT_TLS, ChildNames
from kubetrove.runtime import certs

CA_SECRET = "kubetrove-agent-ca"  # the chart's agentTLS.caSecret default


def _secret(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    obj = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return decode_secret(api.sanitize_for_serialization(obj))


def ca_of(api: client.ApiClient, operator_namespace: str) -> certs.KeyPair:
    data = _secret(api, operator_namespace, CA_SECRET)
    return certs.KeyPair(data["ca.crt"].encode(), data["ca.key"].encode())


def _context(ca: certs.KeyPair, client_cert: certs.KeyPair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert.decode())
    if client_cert is not None:
        certfile, keyfile = certs.write(client_cert, Path(tempfile.mkdtemp(prefix="kt-e2e-client-")))
        context.load_cert_chain(certfile, keyfile)
    return context


async def _ask(url: str, token: str, context: ssl.SSLContext | None, name: str | None, route: str) -> Any:
    async with AgentClient(url, token, ssl_context=context, server_hostname=name, retries=0) as agent:
        return await (agent.healthz() if route == "healthz" else agent.status())


def check_agent_tls(api: client.ApiClient, operator_namespace: str, namespace: str, owner: str) -> None:
    """The checks above against every pod of ``owner`` (a Ready database in ``namespace``)."""
    names = ChildNames(owner)
    ca = ca_of(api, operator_namespace)
    served = _secret(api, namespace, names.agent_tls_secret)
    assert served["ca.crt"] == ca.cert.decode() and "ca.key" not in served  # the CA's key stays home
    assert certs.issued_by(served["tls.crt"].encode(), ca.cert)
    token = _secret(api, namespace, names.agent_token_secret)[AGENT_TOKEN_KEY]
    operator_like = certs.sign(ca, ["e2e-client"], client=True)
    stranger = certs.sign(certs.new_ca("someone else's CA"), ["e2e-client"], client=True)
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={owner}"
    )
    assert pods.items
    for pod in pods.items:
        url, name = split_tls_name(
            base_url(pod.status.pod_ip, names.member_host(pod.metadata.name, namespace))
        )
        assert url.startswith("https://")
        plain = url.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the agent port
            asyncio.run(_ask(plain, token, None, None, "healthz"))
        assert asyncio.run(_ask(url, "", _context(ca, None), name, "healthz")).ok  # probes: no client cert
        with pytest.raises(AgentError) as refused:
            asyncio.run(_ask(url, token, _context(ca, None), name, "status"))
        assert refused.value.status == 401 and "client certificate required" in str(refused.value)
        with pytest.raises(aiohttp.ClientError):  # another CA's client certificate: refused at the handshake
            asyncio.run(_ask(url, token, _context(ca, stranger), name, "status"))
        with pytest.raises(aiohttp.ClientError):  # the certificate names this member, not another database's
            asyncio.run(
                _ask(
                    url,
                    token,
                    _context(ca, operator_like),
                    f"{pod.metadata.name}.x-headless.{namespace}.svc",
                    "healthz",
                )
            )
        status = asyncio.run(_ask(url, token, _context(ca, operator_like), name, "status"))
        assert status.engine


def operator_like_client(
    api: client.ApiClient, operator_namespace: str, namespace: str, owner: str, pod: Any
) -> AgentClient:
    """A client of ``pod``'s agent as the operator makes one: the database's agent token and, when the pod
    serves TLS (its annotation), a client certificate of the installation's CA, checking the member's name."""
    names = ChildNames(owner)
    token = _secret(api, namespace, names.agent_token_secret)[AGENT_TOKEN_KEY]
    if (pod.metadata.annotations or {}).get(ANNOTATION_AGENT_TLS) != "true":
        return AgentClient(base_url(pod.status.pod_ip), token)
    ca = ca_of(api, operator_namespace)
    url, name = split_tls_name(base_url(pod.status.pod_ip, names.member_host(pod.metadata.name, namespace)))
    context = _context(ca, certs.sign(ca, ["e2e-client"], client=True))
    return AgentClient(url, token, ssl_context=context, server_hostname=name)
