"""Reading a Secret's values (written once: credentials, user passwords, agent tokens, S3 keys)."""

from __future__ import annotations

import base64

from kubetrove.k8s.port import Obj


def decode_secret(secret: Obj | None) -> dict[str, str]:
    """A Secret's values as text (``data`` is base64; ``stringData`` is never returned by the server)."""
    if secret is None:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
