"""Domain errors map to kopf's retry semantics in one place."""

from __future__ import annotations

import kopf
import pytest

from kubetrove.handlers.errors import API_ERROR_DELAY, CONFLICT_DELAY, kopf_errors
from kubetrove.k8s.errors import ApiError, Conflict
from kubetrove.reconcile.errors import InvalidSpec, NotReady


class P:
    field, message = "spec.x", "bad"


def test_invalid_spec_is_permanent() -> None:
    with pytest.raises(kopf.PermanentError, match=r"spec\.x: bad"), kopf_errors():
        raise InvalidSpec([P()])


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (NotReady("wait", 7), 7),
        (Conflict(409, "Conflict"), CONFLICT_DELAY),
        (ApiError(500, "x"), API_ERROR_DELAY),
    ],
)
def test_transient_errors_are_temporary(error: Exception, delay: float) -> None:
    with pytest.raises(kopf.TemporaryError) as info, kopf_errors():
        raise error
    assert info.value.delay == delay


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), kopf_errors():
        raise KeyError("bug")
