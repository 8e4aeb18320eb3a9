"""The ONE fake of the operator's agents in unit tests: the gateway's ``Connect`` (kubetrove/members.py).

``FakeAgents()`` stands in for ``http_client``: every client it builds records its calls here and answers
from shared in-memory state with the routes' semantics (POST /v1/backups idempotent per id, GET 404 for an
unknown id). ``failures`` makes a method (or ``"*"``: every method) raise instead, e.g. an ``AgentError``
(a reply) or ``aiohttp.ClientConnectionError`` (no reply): the gateway maps both as in production.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import (
    BackupPhase,
    BackupReply,
    BackupRequest,
    BackupTarget,
    ErrorReply,
    Grant,
    Ok,
    ParametersReply,
    RestoreProgress,
    RestoreState,
    Status,
    VerifyReply,
    VerifyRequest,
    VolumeUsage,
)


class FakeAgents:
    """Every agent of a unit test (see the module docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []  # (base URL, method, args) of each call that succeeded
        self.attempts: list[tuple[str, str, Any]] = []  # every call, failed ones included
        self.urls: list[str] = []  # base URL of each client built
        self.tokens: list[str] = []  # token of each client built
        self.failures: dict[str, Exception] = {}
        self.backups: dict[str, BackupReply] = {}
        self.verify_reply: VerifyReply | None = None
        self.verify_replies: dict[str, VerifyReply] = {}  # base URL -> POST /v1/verify (else verify_reply)
        self.restore: dict[str, RestoreProgress] = {}  # base URL -> GET /v1/restore (default: done)
        self.statuses: dict[str, Status] = {}  # base URL -> GET /v1/status (a 503 when absent)
        self.volumes: dict[str, VolumeUsage] = {}  # base URL -> GET /v1/volume (None when absent)

    def __call__(
        self,
        base_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> FakeAgent:
        assert token, "the gateway never builds a client without a token"
        self.urls.append(base_url)
        self.tokens.append(token)
        return FakeAgent(self, base_url)

    def of(self, method: str, attempted: bool = False) -> list[Any]:
        """The arguments of every (successful, else attempted) call of ``method``."""
        return [args for _, m, args in (self.attempts if attempted else self.calls) if m == method]

    def refuse(self, method: str, status: int, error: str, detail: str) -> None:
        """``method`` answers ``status`` with this ErrorReply from now on."""
        self.failures[method] = AgentError(status, ErrorReply(error=error, detail=detail))

    def unreachable(self, method: str = "*") -> None:
        """``method`` gets no reply from now on."""
        self.failures[method] = aiohttp.ClientConnectionError("connection refused")

    def finish(self, backup_id: str, **changes: Any) -> None:
        """The agent's backup run ends (Completed unless ``phase`` says otherwise)."""
        done = {
            "phase": BackupPhase.COMPLETED,
            "completed_at": "2026-01-02T03:05:05Z",
            "size_bytes": 1234,
            "sha256": "ab" * 32,
            "position": "0-1-42",
            "throughput_mib_per_s": 50.0,
            **changes,
        }
        self.backups[backup_id] = BackupReply.model_validate({**self.backups[backup_id].model_dump(), **done})

    def forget(self) -> None:
        """The agent restarted: it knows no backup any more."""
        self.backups.clear()


class FakeAgent:
    """One client (one base URL); its methods are ``AgentClient``'s."""

    def __init__(self, agents: FakeAgents, base_url: str) -> None:
        self.agents, self.base_url = agents, base_url

    def _call(self, method: str, args: Any) -> None:
        self.agents.attempts.append((self.base_url, method, args))
        failure = self.agents.failures.get(method) or self.agents.failures.get("*")
        if failure is not None:
            raise failure
        self.agents.calls.append((self.base_url, method, args))

    async def close(self) -> None:
        return None

    async def ensure_database(self, name: str, replication_factor: int = 1) -> Ok:
        self._call("ensure_database", (name, replication_factor))
        return Ok()

    async def ensure_ring_replication(self, replication_factor: int) -> Ok:
        self._call("ensure_ring_replication", replication_factor)
        return Ok()

    async def leave_check(self, nodes_left: int, lowering: list[str]) -> Ok:
        self._call("leave_check", (nodes_left, lowering))
        return Ok()

    async def decommission(self) -> Ok:
        self._call("decommission", self.base_url)
        return Ok(detail="decommissioned")

    async def status(self) -> Status:
        self._call("status", None)
        if self.base_url not in self.agents.statuses:
            raise AgentError(503, ErrorReply(error="engine_unavailable", detail="no status in this test"))
        return self.agents.statuses[self.base_url]

    async def volume(self) -> VolumeUsage | None:
        self._call("volume", None)
        return self.agents.volumes.get(self.base_url)

    async def drop_database(self, name: str) -> Ok:
        self._call("drop_database", name)
        return Ok()

    async def ensure_user(self, name: str, password: str, grants: list[Grant]) -> Ok:
        self._call(
            "ensure_user", (name, password, [(g.database, [p.value for p in g.privileges]) for g in grants])
        )
        return Ok()

    async def drop_user(self, name: str) -> Ok:
        self._call("drop_user", name)
        return Ok()

    async def apply_parameters(self, parameters: dict[str, str]) -> ParametersReply:
        self._call("apply_parameters", dict(parameters))
        return ParametersReply(applied=sorted(parameters))

    async def get_backup(self, backup_id: str) -> BackupReply:
        self._call("get_backup", backup_id)
        if backup_id not in self.agents.backups:
            raise AgentError(404, ErrorReply(error="not_found", detail=backup_id))
        return self.agents.backups[backup_id]

    async def start_backup(self, request: BackupRequest) -> BackupReply:
        self._call("start_backup", request)
        return self.agents.backups.setdefault(
            request.id,
            BackupReply(
                id=request.id,
                phase=BackupPhase.RUNNING,
                engine="mariadb",
                method=request.method,
                tool="mariabackup",
                engine_version="10.11.16-MariaDB",
                started_at="2026-01-02T03:04:05Z",
                location=f"s3://b/{request.id}/",
            ),
        )

    async def delete_backup(self, backup_id: str, target: BackupTarget) -> Ok:
        self._call("delete_backup", (backup_id, target))
        return Ok()

    async def verify(self, request: VerifyRequest, timeout_seconds: float = 900.0) -> VerifyReply:
        self._call("verify", request)
        reply = self.agents.verify_replies.get(self.base_url) or self.agents.verify_reply
        assert reply is not None, "set FakeAgents.verify_reply (or verify_replies) first"
        return reply

    async def restore_progress(self) -> RestoreProgress:
        self._call("restore_progress", None)
        return self.agents.restore.get(self.base_url) or RestoreProgress(
            backup_id="", state=RestoreState.DONE
        )
