"""The Secrets: engine credentials, the agent token and TLS certificate, generated passwords of users.

Values are passed in (``RenderInputs``), never generated here: render stays deterministic, and
reconcile decides when a value is created or kept. These are the ONLY manifests that carry secret
values; every other object refers to them by name and key (a unit test checks it).
"""

from __future__ import annotations

from typing import Any

from kubetrove.render import names
from kubetrove.render.inputs import RenderInputs


def _secret(inputs: RenderInputs, name: str, data: dict[str, str]) -> dict[str, Any]:
    # stringData: the API server base64-encodes it into data; server-side apply keeps it idempotent.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": inputs.metadata(name),
        "type": "Opaque",
        "stringData": dict(sorted(data.items())),
    }


def credentials_secret(inputs: RenderInputs) -> dict[str, Any]:
    """The engine credentials, read by the engine container (``secret_env``) and the agent."""
    return _secret(inputs, inputs.names.credentials_secret, dict(inputs.credentials))


def agent_token_secret(inputs: RenderInputs) -> dict[str, Any]:
    """The agent's bearer token, mounted as a file into the agent (``TOKEN_FILE_ENV`` points at it)."""
    return _secret(inputs, inputs.names.agent_token_secret, {names.AGENT_TOKEN_KEY: inputs.agent_token})


def agent_tls_secret(inputs: RenderInputs) -> dict[str, Any] | None:
    """The agent's server certificate, its key and the CA (mounted into the agent), or None without TLS."""
    if inputs.agent_tls is None:
        return None
    return _secret(inputs, inputs.names.agent_tls_secret, dict(inputs.agent_tls))


def engine_tls_secret(inputs: RenderInputs) -> dict[str, Any] | None:
    """The engine's client TLS certificate, key, combined PEM and CA (mounted into the engine), or None
    without spec.tls (a Secret left from before stays, like the agent's)."""
    if inputs.server_tls is None or inputs.engine_tls is None:
        return None
    return _secret(inputs, inputs.names.engine_tls_secret, dict(inputs.engine_tls))


def user_password_secret(inputs: RenderInputs, user: str, password: str) -> dict[str, Any]:
    """The generated password of database user ``user`` (only for users without ``passwordSecretRef``)."""
    return _secret(inputs, inputs.names.user_secret(user), {names.USER_PASSWORD_KEY: password})
