"""The ONE place where domain errors become kopf's retry semantics (kopf docs/errors.rst)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kopf
from pydantic import ValidationError

from kubetrove.k8s.errors import ApiError, Conflict
from kubetrove.reconcile.errors import InvalidSpec, NotReady

CONFLICT_DELAY = 1.0  # someone wrote the object meanwhile: re-read and retry almost at once
API_ERROR_DELAY = 10.0


@contextmanager
def kopf_errors() -> Iterator[None]:
    """Map: InvalidSpec and unparsable bodies -> PermanentError (retrying cannot help);
    NotReady -> TemporaryError(its delay); API refusals -> TemporaryError."""
    try:
        yield
    except InvalidSpec as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc
    except ValidationError as exc:
        raise kopf.PermanentError(f"spec refused by the model: {exc}") from exc
    except NotReady as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
    except Conflict as exc:
        raise kopf.TemporaryError(f"conflict: {exc}", delay=CONFLICT_DELAY) from exc
    except ApiError as exc:
        raise kopf.TemporaryError(f"API server: {exc}", delay=API_ERROR_DELAY) from exc
