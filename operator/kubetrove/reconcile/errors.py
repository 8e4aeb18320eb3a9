"""Domain errors of reconciliation. handlers/errors.py maps them to kopf's errors, in ONE place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Problem(Protocol):
    """One reason a spec is refused (``kubetrove.datastores.validation.Problem`` has this shape)."""

    @property
    def field(self) -> str:
        """The dotted path of the field, e.g. ``spec.parameters.max_connections``."""
        ...

    @property
    def message(self) -> str:
        """What is wrong with it."""
        ...


class ReconcileError(Exception):
    """Base of every error reconcile raises on purpose."""


class InvalidSpec(ReconcileError):
    """The spec passed the CRD schema but not the operator's checks: retrying cannot help."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(summary(self.problems))


class NotReady(ReconcileError):
    """Something we wait for is not there yet (a member, a volume): try again after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 10.0) -> None:
        super().__init__(message)
        self.delay = delay


def summary(problems: Sequence[Problem]) -> str:
    """``spec.a: msg; spec.b: msg``: every problem in one line (a condition message, an Event note)."""
    return "; ".join(f"{p.field}: {p.message}" for p in problems)
