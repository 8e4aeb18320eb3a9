"""Reading a Secret's values (written once: credentials, user passwords, agent tokens, S3 keys).

A Secret's ``data`` is bytes (base64 on the wire); every value kubetrove reads is text. A value that is
not UTF-8 is refused with ``SecretValueError`` naming the Secret and the key, never a bare
UnicodeDecodeError from deep inside a reconcile.
"""

from __future__ import annotations

import base64
import binascii

from kubetrove.k8s.port import Obj


class SecretValueError(ValueError):
    """A Secret's value cannot be used as text; the message names the Secret and the key (never the value)."""


def _where(secret: Obj) -> str:
    meta = secret.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _decode(secret: Obj, key: str, raw: str) -> str:
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SecretValueError(f"Secret {_where(secret)}, key {key!r}: the value is not UTF-8 text") from None


def decode_secret(secret: Obj | None) -> dict[str, str]:
    """A Secret's values as text (``data`` is base64; ``stringData`` is never returned by the server)."""
    if secret is None:
        return {}
    return {k: _decode(secret, k, v) for k, v in (secret.get("data") or {}).items()}


def secret_value(secret: Obj | None, key: str) -> str | None:
    """One value of a Secret as text (None: no Secret or no such key); only that key is decoded."""
    if secret is None:
        return None
    raw = (secret.get("data") or {}).get(key)
    return None if raw is None else _decode(secret, key, raw)
