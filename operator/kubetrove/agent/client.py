"""The async client the operator uses to talk to an agent: one method per route, protocol models out.

Retries: only when the request could not be delivered or answered at the transport level
(``aiohttp.ClientConnectionError``: refused, reset, DNS), with exponential backoff. A reply, any reply
(4xx or 5xx), is the agent's answer and is never retried: it raises ``AgentError`` carrying the
``ErrorReply``. Timeouts are not retried either: the request may have run (a promote that timed out
must be re-observed through ``status``, not blindly repeated).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from pydantic import BaseModel, ValidationError

from kubetrove.agent.protocol import (
    LOG_TAIL_DEFAULT,
    TOKEN_HEADER,
    BackupReply,
    BackupRequest,
    BackupTarget,
    DatabaseList,
    DatabaseRequest,
    ErrorLogReply,
    ErrorReply,
    Grant,
    Health,
    LeaveCheckRequest,
    LogQuery,
    MembersReply,
    MembersRequest,
    Ok,
    ParametersReply,
    ParametersRequest,
    Paths,
    RebuildReply,
    RebuildRequest,
    ReplicationSourceRequest,
    RestoreProgress,
    SetMember,
    SlowLogReply,
    Status,
    UserRequest,
    VerifyReply,
    VerifyRequest,
    VolumeReply,
    VolumeUsage,
    WaitReply,
    WaitRequest,
    bearer,
)

M = TypeVar("M", bound=BaseModel)


class AgentError(Exception):
    """The agent answered with a non-2xx status; ``reply`` is its ErrorReply."""

    def __init__(self, status: int, reply: ErrorReply) -> None:
        super().__init__(f"agent replied {status} {reply.error}: {reply.detail}")
        self.status = status
        self.reply = reply


class AgentClient:
    """Client of one agent at ``base_url`` (``http(s)://host:port``).

    Over HTTPS, ``ssl_context`` verifies the agent (and may carry a client certificate); ``server_hostname``
    is the name the agent's certificate is checked against (and sent as SNI) when it is not the URL's host,
    e.g. a pod reached by IP whose certificate names its DNS name."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {TOKEN_HEADER: bearer(token)}
        self._session = session
        self._owns_session = session is None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self.server_hostname = server_hostname

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        reply: type[M],
        body: BaseModel | None = None,
        total: float | None = None,
    ) -> M:
        data = body.model_dump_json() if body is not None else None
        attempt = 0
        while True:
            try:
                return await self._once(method, path, reply, data, total or self.timeout)
            except aiohttp.ClientConnectionError:
                if attempt >= self.retries:
                    raise
                await asyncio.sleep(self.backoff * 2**attempt)
                attempt += 1

    async def _once(self, method: str, path: str, reply: type[M], data: str | None, total: float) -> M:
        headers: Mapping[str, str] = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        async with self._get_session().request(
            method,
            self.base_url + path,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=total),
            ssl=self._ssl,
            server_hostname=self.server_hostname,
        ) as response:
            text = await response.text()
            if response.status >= 300:
                raise AgentError(response.status, _error_reply(response.status, text))
            return reply.model_validate_json(text)

    async def healthz(self) -> Health:
        """GET /healthz."""
        return await self._call("GET", Paths.HEALTHZ, Health)

    async def readyz(self) -> Health:
        """GET /readyz."""
        return await self._call("GET", Paths.READYZ, Health)

    async def status(self) -> Status:
        """GET /v1/status."""
        return await self._call("GET", Paths.STATUS, Status)

    async def volume(self) -> VolumeUsage | None:
        """GET /v1/volume (answered without the engine)."""
        return (await self._call("GET", Paths.VOLUME, VolumeReply)).volume

    async def list_databases(self) -> list[str]:
        """GET /v1/databases."""
        return (await self._call("GET", Paths.DATABASES, DatabaseList)).names

    async def ensure_database(self, name: str, replication_factor: int = 1) -> Ok:
        """PUT /v1/databases/{name}."""
        body = DatabaseRequest(replication_factor=replication_factor)
        return await self._call("PUT", _fill(Paths.DATABASE, name=name), Ok, body)

    async def ensure_ring_replication(self, replication_factor: int) -> Ok:
        """PUT /v1/ring/replication (rings only): the auth keyspace's factor, repaired when it changed."""
        body = DatabaseRequest(replication_factor=replication_factor)
        return await self._call("PUT", Paths.RING_REPLICATION, Ok, body)

    async def decommission(self) -> Ok:
        """POST /v1/ring/decommission (rings only): the node leaves the ring; 409 when a keyspace needs it."""
        return await self._call("POST", Paths.RING_DECOMMISSION, Ok)

    async def leave_check(self, nodes_left: int, lowering: list[str]) -> Ok:
        """POST /v1/ring/decommission/check (rings only): 409 when ``nodes_left`` nodes could not hold a
        keyspace other than the ring's system ones and ``lowering``; changes nothing."""
        body = LeaveCheckRequest(nodes_left=nodes_left, lowering=lowering)
        return await self._call("POST", Paths.RING_LEAVE_CHECK, Ok, body)

    async def drop_database(self, name: str) -> Ok:
        """DELETE /v1/databases/{name}."""
        return await self._call("DELETE", _fill(Paths.DATABASE, name=name), Ok)

    async def ensure_user(self, name: str, password: str, grants: list[Grant]) -> Ok:
        """PUT /v1/users/{name}."""
        body = UserRequest(password=password, grants=grants)
        return await self._call("PUT", _fill(Paths.USER, name=name), Ok, body)

    async def drop_user(self, name: str) -> Ok:
        """DELETE /v1/users/{name}."""
        return await self._call("DELETE", _fill(Paths.USER, name=name), Ok)

    async def apply_parameters(self, parameters: dict[str, str]) -> ParametersReply:
        """PUT /v1/parameters."""
        body = ParametersRequest(parameters=parameters)
        return await self._call("PUT", Paths.PARAMETERS, ParametersReply, body)

    async def set_source(self, host: str, port: int, user: str, password: str) -> Ok:
        """POST /v1/replication/source."""
        body = ReplicationSourceRequest(host=host, port=port, user=user, password=password)
        return await self._call("POST", Paths.REPLICATION_SOURCE, Ok, body)

    async def stop_replication(self) -> Ok:
        """POST /v1/replication/stop."""
        return await self._call("POST", Paths.REPLICATION_STOP, Ok)

    async def promote(self) -> Ok:
        """POST /v1/replication/promote."""
        return await self._call("POST", Paths.REPLICATION_PROMOTE, Ok)

    async def fence(self) -> Ok:
        """POST /v1/replication/fence."""
        return await self._call("POST", Paths.REPLICATION_FENCE, Ok)

    async def wait_for_position(self, position: str, timeout_seconds: float = 30.0) -> WaitReply:
        """POST /v1/replication/wait; a 408 becomes ``WaitReply(reached=False)``, not an error."""
        body = WaitRequest(position=position, timeout_seconds=timeout_seconds)
        try:
            # The HTTP timeout must outlast the server-side wait.
            return await self._call(
                "POST", Paths.REPLICATION_WAIT, WaitReply, body, timeout_seconds + self.timeout
            )
        except AgentError as exc:
            if exc.status == 408:
                return WaitReply(reached=False, position=position)
            raise

    async def rebuild(self, host: str, port: int, user: str, password: str) -> RebuildReply:
        """POST /v1/replication/rebuild: starts it (202); ``Status.rebuilding`` says when it is done."""
        body = RebuildRequest(host=host, port=port, user=user, password=password)
        return await self._call("POST", Paths.REPLICATION_REBUILD, RebuildReply, body)

    async def set_members(self, members: list[SetMember]) -> MembersReply:
        """PUT /v1/replication/members (engine-elected sets): at most one member changed per call."""
        body = MembersRequest(members=members)
        return await self._call("PUT", Paths.REPLICATION_MEMBERS, MembersReply, body)

    async def start_backup(self, request: BackupRequest) -> BackupReply:
        """POST /v1/backups: start a backup, or (same id) get the one already running or finished."""
        return await self._call("POST", Paths.BACKUPS, BackupReply, request)

    async def get_backup(self, backup_id: str) -> BackupReply:
        """GET /v1/backups/{id}; AgentError 404 when this agent never ran it (e.g. it restarted)."""
        return await self._call("GET", _fill(Paths.BACKUP, id=backup_id), BackupReply)

    async def delete_backup(self, backup_id: str, target: BackupTarget) -> Ok:
        """DELETE /v1/backups/{id}: remove the stored backup from ``target``."""
        return await self._call("DELETE", _fill(Paths.BACKUP, id=backup_id), Ok, target)

    async def verify(self, request: VerifyRequest, timeout_seconds: float = 900.0) -> VerifyReply:
        """POST /v1/verify: consistency check + stats of the restored engine vs the backup's manifest."""
        # A full check scans every table: the HTTP timeout is the caller's bound, not the default.
        return await self._call("POST", Paths.VERIFY, VerifyReply, request, timeout_seconds)

    async def restore_progress(self) -> RestoreProgress:
        """GET /v1/restore: this pod's restore of ``spec.restoreFrom``; AgentError 404 when it has none."""
        return await self._call("GET", Paths.RESTORE, RestoreProgress)

    async def slow_log(self, tail: int = LOG_TAIL_DEFAULT, since: datetime | None = None) -> SlowLogReply:
        """GET /v1/logs/slow: the newest ``tail`` slow statements at or after ``since`` (redacted);
        AgentError 409 when the engine logs them elsewhere, 501 when the agent cannot read them."""
        return await self._call("GET", _logs(Paths.LOGS_SLOW, tail, since), SlowLogReply)

    async def error_log(self, tail: int = LOG_TAIL_DEFAULT, since: datetime | None = None) -> ErrorLogReply:
        """GET /v1/logs/error: the newest ``tail`` entries of the engine's error log (redacted); 501 when
        the agent cannot read it."""
        return await self._call("GET", _logs(Paths.LOGS_ERROR, tail, since), ErrorLogReply)


def _logs(path: str, tail: int, since: datetime | None) -> str:
    """``path`` with the query string of ``LogQuery`` (checked here first: a bad tail never leaves)."""
    query = LogQuery(tail=tail, since=since)
    params = {"tail": str(query.tail)} | ({"since": query.since.isoformat()} if query.since else {})
    return f"{path}?{urlencode(params)}"


def _fill(template: str, **values: str) -> str:
    return template.format(**{k: quote(v, safe="") for k, v in values.items()})


def _error_reply(status: int, text: str) -> ErrorReply:
    try:
        return ErrorReply.model_validate_json(text)
    except ValidationError:  # not our agent (a proxy, a port clash): keep a short excerpt
        return ErrorReply(error=f"http_{status}", detail=text[:200])
