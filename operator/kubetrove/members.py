"""The operator's one gateway to its agents: a resource's member pods, their token, clients, errors.

Every call the operator makes to an agent goes through here (users, parameters, backups, verification,
restore status, the clustering loop), so the rules are written once:

- the member pods of a resource are the pods its StatefulSet selects (``labels.selector_labels``);
- the agent token is read from the resource's token Secret once per use (a rotated token is picked up
  by the next use, never mid-way);
- clients share one HTTP session and are closed together when the ``Agents`` block ends;
- a failed call becomes exactly one of three errors, each naming the pod:
  ``AgentRefused`` (a 4xx reply: this request is refused, asking again the same way cannot help),
  ``AgentNotReady`` (a 5xx reply: the agent answers but its engine cannot serve, e.g. 503 while it
  starts), ``AgentUnreachable`` (no reply: connection refused or reset, DNS, timeout). A timed-out call
  may still have run: callers re-observe, they never blindly repeat an action.

Callers keep only their own policy (which status codes end a backup as Failed, what a condition says).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import aiohttp

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import ErrorReply, base_url, split_tls_name
from kubetrove.api.common import Engine
from kubetrove.api.resources import ObjectRef
from kubetrove.k8s.kinds import POD, SECRET
from kubetrove.k8s.pods import pod_ip
from kubetrove.k8s.port import Kube, Obj
from kubetrove.k8s.secrets import decode_secret
from kubetrove.render import labels
from kubetrove.render.names import AGENT_TOKEN_KEY, ANNOTATION_AGENT_TLS, LABEL_INSTANCE, ChildNames

T = TypeVar("T")
Agent = AgentClient  # what ``Agents.call`` hands its function: one method per agent route


class AgentUrl(Protocol):
    """(namespace, pod name, pod IP or DNS name, TLS name when its agent serves TLS) -> the agent's URL."""

    def __call__(self, namespace: str, pod: str, host: str, tls_name: str | None = None) -> str: ...


DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3


class Connect(Protocol):
    """Builds the client of one agent (``AgentClient`` in production, the unit tests' fake otherwise)."""

    def __call__(
        self,
        base_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> AgentClient: ...


def http_client(
    base_url: str,
    token: str,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    ssl_context: ssl.SSLContext | None = None,
) -> AgentClient:
    """The production ``Connect``: the client of ``kubetrove.agent.client``. An ``https://`` URL is
    verified against ``ssl_context`` (the agents' CA; the operator's client certificate in it) and the
    name in its fragment (``protocol.base_url``); a plain one never gets the context."""
    url, name = split_tls_name(base_url)
    https = url.startswith("https://")
    return AgentClient(
        url,
        token,
        session=session,
        timeout=timeout,
        retries=retries,
        ssl_context=ssl_context if https else None,
        server_hostname=name,
    )


def tls_client(context: ssl.SSLContext) -> Connect:
    """``http_client`` with the operator's TLS context for agents that serve HTTPS."""
    return functools.partial(http_client, ssl_context=context)


def default_agent_url(namespace: str, pod: str, host: str, tls_name: str | None = None) -> str:
    """Where a pod's agent listens in a real cluster: its IP (or DNS name) and the protocol's port."""
    return base_url(host, tls_name)


def agent_tls_name(pod: Obj, namespace: str) -> str | None:
    """The name ``pod``'s agent certificate carries when the pod's agent serves TLS (its template says
    so: ``ANNOTATION_AGENT_TLS``), else None. Decided per pod, so while pods roll onto TLS the operator
    keeps talking plain HTTP to the ones not yet replaced, and never plain HTTP to one that serves TLS."""
    meta = pod.get("metadata") or {}
    if (meta.get("annotations") or {}).get(ANNOTATION_AGENT_TLS) != "true":
        return None
    owner = (meta.get("labels") or {}).get(LABEL_INSTANCE, "")
    return ChildNames(owner).member_host(meta.get("name", ""), namespace)


class AgentCallError(Exception):
    """A call to the agent of ``pod`` failed; ``reason`` says how (without the pod's name)."""

    def __init__(self, pod: str, reason: str, status: int | None = None, reply: ErrorReply | None = None):
        super().__init__(f"{pod}: {reason}")
        self.pod = pod
        self.reason = reason
        self.status = status  # the HTTP status of the agent's reply; None when there was no reply
        self.reply = reply

    @property
    def said(self) -> str:
        """``<error code>: <detail>`` from the agent's reply, else the reason."""
        return f"{self.reply.error}: {self.reply.detail}" if self.reply else self.reason


class AgentRefused(AgentCallError):
    """A 4xx reply: the agent refused the request."""


class AgentNotReady(AgentCallError):
    """A 5xx reply: the agent answers, its engine cannot serve the request now."""


class AgentUnreachable(AgentCallError):
    """No reply at all: connection refused or reset, DNS, timeout."""


def _mapped(pod: str, exc: Exception) -> AgentCallError:
    if isinstance(exc, AgentError):
        kind = AgentRefused if exc.status < 500 else AgentNotReady
        return kind(pod, str(exc), exc.status, exc.reply)
    return AgentUnreachable(pod, f"agent unreachable: {exc!r}")


class Agents:
    """Clients to the agents of one resource's members: one token, one HTTP session, closed together.

    ``probe`` clients (status probes) use a short timeout and no retry: a dead member must be detected
    quickly, and detection is the caller's job (the clustering loop's ``DownClock``).
    """

    def __init__(
        self,
        connect: Connect,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        probe_timeout: float = 2.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._connect = connect
        self._token = token
        self._profiles = {False: (timeout, retries), True: (probe_timeout, 0)}
        self._session = session
        self._owns_session = session is None
        self._clients: dict[tuple[str, str, bool], AgentClient] = {}

    async def __aenter__(self) -> Agents:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def client(self, pod: str, url: str, probe: bool = False) -> AgentClient:
        """The client of ``pod``'s agent at ``url`` (built once per block)."""
        key = (pod, url, probe)
        if key not in self._clients:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            timeout, retries = self._profiles[probe]
            self._clients[key] = self._connect(
                url, self._token, session=self._session, timeout=timeout, retries=retries
            )
        return self._clients[key]

    async def call(
        self, pod: str, url: str, fn: Callable[[Agent], Awaitable[T]], *, probe: bool = False
    ) -> T:
        """``fn(client)`` against ``pod``'s agent; a failure raises one of the three errors above."""
        try:
            return await fn(self.client(pod, url, probe))
        except (AgentError, aiohttp.ClientError, TimeoutError) as exc:
            raise _mapped(pod, exc) from exc

    async def close(self) -> None:
        """Close every client and the shared session (when this block made it)."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None


@dataclass(frozen=True)
class Members:
    """The gateway: a resource's member pods, its agent token, and ``Agents`` blocks to call them."""

    kube: Kube
    connect: Connect = http_client
    agent_url: AgentUrl = default_agent_url

    async def pods(self, ref: ObjectRef, engine: Engine) -> list[Obj]:
        """Every pod the resource's StatefulSet selects (any state: callers pick the ones they need)."""
        return await self.kube.list(POD, ref.namespace, labels.selector_labels(ref, engine))

    async def token(self, namespace: str, owner: str) -> str | None:
        """The agent token of resource ``owner``, or None while its Secret (or the key) is missing."""
        secret = await self.kube.get(SECRET, namespace, ChildNames(owner).agent_token_secret)
        return decode_secret(secret).get(AGENT_TOKEN_KEY) or None

    def url(self, namespace: str, pod: Obj) -> str:
        """Where ``pod``'s agent listens: at its IP, else (none reported yet) its DNS name."""
        name = pod["metadata"]["name"]
        owner = (pod["metadata"].get("labels") or {}).get(LABEL_INSTANCE, "")
        host = pod_ip(pod) or ChildNames(owner).member_host(name, namespace)
        return self.agent_url(namespace, name, host, agent_tls_name(pod, namespace))

    def agents(
        self, token: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES
    ) -> Agents:
        """An ``async with`` block of clients authenticated with ``token``."""
        return Agents(self.connect, token, timeout=timeout, retries=retries)
