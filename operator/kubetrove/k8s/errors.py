"""Errors of the Kubernetes adapter: the API server's status codes, as types callers can catch."""

from __future__ import annotations


class ApiError(Exception):
    """The API server refused a request (any non-2xx reply not covered by a subclass)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: the object (or its kind) does not exist."""


class Conflict(ApiError):
    """409: AlreadyExists on create, or a stale resourceVersion on replace."""


class Invalid(ApiError):
    """422: the server's validation (schema, immutable field) refused the object."""


def from_status(status: int, reason: str, message: str = "") -> ApiError:
    """The most specific ApiError for an HTTP status code."""
    cls = {404: NotFound, 409: Conflict, 422: Invalid}.get(status, ApiError)
    return cls(status, reason, message)
