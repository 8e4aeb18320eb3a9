"""Bearer-token authentication and the optional TLS context.

The token comes from a file (``KUBETROVE_AGENT_TOKEN_FILE``), a per-cluster Secret mounted into the pod.
It is re-read when the file changes, so a rotated Secret takes effect without a restart (the kubelet
swaps the mounted file atomically). Comparison is constant-time (``hmac.compare_digest``).

Unauthenticated on purpose: ``/healthz`` and ``/readyz`` (kubelet probes cannot easily send a secret and
they reveal only ok/not-ok) and ``/metrics`` (Prometheus scrapes without credentials; it exposes only
numbers and the engine/role labels, never names, positions or secrets). Everything under ``/v1`` needs
the token.
"""

from __future__ import annotations

import hmac
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from kubetrove.agent.protocol import Paths

PUBLIC_PATHS = frozenset({Paths.HEALTHZ, Paths.READYZ, Paths.METRICS})
TokenSource = Callable[[], str]


class TokenFile:
    """The token in a file, re-read when its modification time or size changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._token = ""
        self()  # fail at start-up, not on the first request, if the file is missing or empty

    def __call__(self) -> str:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            token = self.path.read_text().strip()
            if not token:
                raise ValueError(f"token file {self.path} is empty")
            self._token, self._stamp = token, stamp
        return self._token


def token_matches(header: str | None, expected: str) -> bool:
    """True if ``header`` is ``protocol.bearer(expected)``; constant-time in the token's content."""
    if not header or not expected:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: a non-UTF-8 byte is a lone surrogate,
    # which plain .encode() refuses. surrogateescape gives the bytes back (a 401, not a 500 + traceback).
    return hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), expected.encode())


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+) from the mounted certificate and key files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
