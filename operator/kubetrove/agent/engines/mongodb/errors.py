"""MongoDB server error codes the driver acts on, and the error it raises for a refused command.

Codes: https://www.mongodb.com/docs/manual/reference/error-codes/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrove.agent.engines.base import DriverError

# Server error codes (https://www.mongodb.com/docs/manual/reference/error-codes/).
USER_NOT_FOUND, NAMESPACE_EXISTS, NOT_YET_INITIALIZED, NOT_WRITABLE_PRIMARY = 11, 48, 94, 10107
UNAUTHORIZED = 13
COMMAND_NOT_FOUND, NOT_IMPLEMENTED = 59, 238  # a command this server (version, build) does not have
# Refusals of replSetInitiate / replSetReconfig that mean "not now, or not here": answered 409 so the
# caller re-observes and asks again (AlreadyInitialized, InvalidReplicaSetConfig, NodeNotFound,
# NewReplicaSetConfigurationIncompatible, ConfigurationInProgress, MaxTimeMSExpired,
# CurrentConfigNotCommittedYet, and NotWritablePrimary: the member stepped down meanwhile).
MEMBERSHIP_REFUSALS = frozenset({23, 93, 74, 103, 109, 50, 308, NOT_WRITABLE_PRIMARY})


class CommandFailed(DriverError):
    """The server refused a command; ``mongo_code`` is its error code (or None)."""

    def __init__(self, message: str, mongo_code: int | None) -> None:
        super().__init__(message)
        self.mongo_code = mongo_code


def reason(exc: Any) -> str:
    """The server's own message and code name, without the reply's cluster-time signature and the rest."""
    details = exc.details if isinstance(getattr(exc, "details", None), Mapping) else {}
    message = details.get("errmsg") or str(exc)
    return f"{message} ({details['codeName']})" if details.get("codeName") else str(message)
