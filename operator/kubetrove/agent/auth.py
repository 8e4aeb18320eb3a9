"""Bearer-token authentication and the optional TLS context.

The token comes from a file (``KUBETROVE_AGENT_TOKEN_FILE``), a per-cluster Secret mounted into the pod.
It is re-read when the file changes, so a rotated Secret takes effect without a restart (the kubelet
swaps the mounted file atomically). Comparison is constant-time (``hmac.compare_digest``).

Unauthenticated on purpose: ``/healthz`` and ``/readyz`` (kubelet probes cannot easily send a secret and
they reveal only ok/not-ok) and ``/metrics`` (Prometheus scrapes without credentials; it exposes only
numbers and the engine/role labels, never names, positions or secrets). Everything under ``/v1`` needs
the token.

TLS (``ServerTLS``): the server certificate and key, and optionally a CA for client certificates. With a
client CA a client MAY present a certificate (``CERT_OPTIONAL``: the kubelet's probes present none); one
that is presented is verified in the handshake, and every path but the public ones then needs a verified
client certificate as well as the token. The files are re-loaded into the same context when they change.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

from kubetrove.agent.protocol import Paths

log = logging.getLogger("kubetrove.agent")
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


def server_ssl_context(cert_file: str, key_file: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+) from the mounted certificate and key files; with ``client_ca``,
    client certificates are verified against it when presented (``CERT_OPTIONAL``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_ca:
        context.verify_mode = ssl.CERT_OPTIONAL
    _load(context, cert_file, key_file, client_ca)
    return context


def _load(context: ssl.SSLContext, cert_file: str, key_file: str, client_ca: str | None) -> None:
    context.load_cert_chain(cert_file, key_file)
    if client_ca:
        # Adds the CA: a CA once loaded is never removed from the context, so during a CA rotation the
        # old and the new one are both trusted until the agent restarts (the intended overlap).
        context.load_verify_locations(cafile=client_ca)


def file_stamps(paths: list[str]) -> tuple[tuple[int, int, int], ...]:
    """(inode, mtime, size) of each file through its symlinks: what changes when the kubelet swaps a
    mounted Secret (a new ``..data`` directory)."""
    return tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in map(os.stat, paths))


class EngineTLSFiles:
    """The engine's client TLS files (spec.tls), mounted into the agent too: ``changed`` tells when the
    kubelet swapped in a renewed certificate, so the agent has the engine re-read them (the engine's own
    reload statement, ``TLSReloadDriver``) without a restart."""

    def __init__(self, directory: str, names: tuple[str, ...] = ("tls.crt", "tls.key", "ca.crt")) -> None:
        self.paths = [os.path.join(directory, name) for name in names]
        self._stamp = self._now()

    def _now(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return file_stamps(self.paths)
        except OSError:  # not mounted (yet): nothing to compare
            return None

    def changed(self) -> bool:
        """True once after the files changed since the last ``done``."""
        return self._now() != self._stamp

    def done(self) -> None:
        """The engine re-read the files as they are now."""
        self._stamp = self._now()


class ServerTLS:
    """The agent's server TLS context, re-loaded in place when its files change.

    The kubelet swaps a mounted Secret's files atomically (the ``..data`` symlink), so a change shows as a
    new inode, modification time or size through the symlink. ``reload`` loads the new files into the SAME
    ``context`` (the listening socket keeps it): new handshakes use the new material, established
    connections keep theirs. ``watch`` does it every ``interval`` seconds; the app runs it
    (``server.build_app``)."""

    def __init__(
        self, cert_file: str, key_file: str, client_ca: str | None = None, *, interval: float = 10.0
    ) -> None:
        self.cert_file, self.key_file, self.client_ca = cert_file, key_file, client_ca
        self.interval = interval
        self._stamp = self._stamps()
        self.context = server_ssl_context(cert_file, key_file, client_ca)  # fails at start-up if unusable

    @property
    def verifies_clients(self) -> bool:
        """True when a client certificate is required on every path but the public ones."""
        return bool(self.client_ca)

    def _files(self) -> list[str]:
        return [self.cert_file, self.key_file, *([self.client_ca] if self.client_ca else [])]

    def _stamps(self) -> tuple[tuple[int, int, int], ...]:
        return file_stamps(self._files())

    def reload(self) -> bool:
        """Load the files again if any changed: True if it did. Raises (keeping the old material) if the
        new files do not load, e.g. half-written, or a certificate that does not match the key."""
        stamp = self._stamps()
        if stamp == self._stamp:
            return False
        # The kubelet's timestamped directory behind ``..data`` never changes once swapped in: both loads
        # below read the same files. A scratch context first, because a failed load_cert_chain leaves a
        # live context broken (OpenSSL installs the new certificate, then drops the key that does not
        # match it): only material that loads is put into the served context.
        cert, key, *ca = (os.path.realpath(path) for path in self._files())
        server_ssl_context(cert, key, ca[0] if ca else None)
        _load(self.context, cert, key, ca[0] if ca else None)
        self._stamp = stamp
        return True

    def try_reload(self) -> bool:
        """``reload``, logging a failure as a warning (retried on the next call) instead of raising."""
        try:
            changed = self.reload()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("TLS files did not load; keeping the previous ones", extra={"error": str(exc)})
            return False
        if changed:
            log.info("TLS files re-loaded", extra={"client_ca": self.verifies_clients})
        return changed

    async def watch(self) -> None:
        """Re-load changed files every ``interval`` seconds, until cancelled.

        On the event loop's thread, not in a worker: the loop makes every new connection's SSL object
        from ``context``, and OpenSSL does not allow changing a context while another thread uses it
        (the files are a few KiB on the Secret's tmpfs)."""
        while True:
            await asyncio.sleep(self.interval)
            self.try_reload()
