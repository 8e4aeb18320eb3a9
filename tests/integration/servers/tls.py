"""Client TLS for the engine servers of the tests: the product's certificate and settings, and a probe.

The certificate is the one the operator issues (``reconcile.phases.tls``: the installation CA, the
Service and member names); the settings are the ones each engine's strategy renders for ``spec.tls``
(``render_config(tls=...)``), turned into the command-line options the fixtures start servers with. The
probe is ``openssl s_client -starttls <protocol>`` verifying the CA AND a Service name, which a client of
the database's (psql ``sslmode=verify-full``, Connector/J ``VERIFY_IDENTITY``) checks the same way.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubetrove.api.common import TLSMode
from kubetrove.datastores.base import ServerTLS
from kubetrove.reconcile.phases.tls import engine_tls_hosts, issued_tls_material, with_pem
from kubetrove.render.names import TLS_CA_KEY, TLS_CERT_KEY, TLS_KEY_KEY, TLS_PEM_KEY, ChildNames
from kubetrove.runtime import certs

NAME, NAMESPACE = "db", "ns"
SERVICE = f"{NAME}-rw.{NAMESPACE}.svc"  # what a client verifies (the certificate's common name)


@dataclass(frozen=True)
class TLSFiles:
    """A directory holding the engine TLS Secret's files, as the pod mounts them, and the CA."""

    directory: Path
    ca: certs.KeyPair

    def settings(self, mode: TLSMode) -> ServerTLS:
        d = self.directory
        return ServerTLS(
            mode=mode,
            cert=str(d / TLS_CERT_KEY),
            key=str(d / TLS_KEY_KEY),
            ca=str(d / TLS_CA_KEY),
            pem=str(d / TLS_PEM_KEY),
        )

    @property
    def ca_file(self) -> Path:
        return self.directory / TLS_CA_KEY

    def renew(self, owner: str | None = None) -> bytes:
        """A new certificate in place (what the kubelet's swap of a renewed Secret amounts to); its PEM."""
        return write_material(self.directory, self.ca, owner)


def write_material(directory: Path, ca: certs.KeyPair, owner: str | None = None) -> bytes:
    """Issue the engine certificate for ``db`` in ``ns`` from ``ca`` and write the Secret's four files
    (owned by ``owner`` and 0600 when given: PostgreSQL refuses a key others can read); return the cert."""
    hosts = engine_tls_hosts(ChildNames(NAME), NAMESPACE)
    now = datetime.datetime.now(datetime.UTC)
    material = with_pem(issued_tls_material(ca, hosts, {}, now, also_client=True))
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in material.items():
        path = directory / key
        path.write_text(value)
        os.chmod(path, 0o600)
        if owner:
            shutil.chown(path, owner, owner)
    if owner:
        shutil.chown(directory, owner, owner)
    return material[TLS_CERT_KEY].encode()


def make_files(directory: Path, owner: str | None = None) -> TLSFiles:
    """A new CA and the engine's files from it under ``directory``."""
    ca = certs.new_ca("kubetrove test CA")
    write_material(directory, ca, owner)
    return TLSFiles(directory, ca)


@dataclass(frozen=True)
class Probe:
    """What ``openssl s_client`` saw: whether the chain and the name verified, and the server's cert."""

    verified: bool
    certificate: bytes  # PEM ("" when no handshake)
    output: str


def probe(port: int, protocol: str, ca_file: Path, name: str = SERVICE, host: str = "127.0.0.1") -> Probe:
    """TLS to ``host:port`` verifying ``ca_file`` and ``name``: STARTTLS for ``protocol`` postgres or
    mysql, TLS from the first byte for "" (MongoDB)."""
    argv = [
        *("openssl", "s_client", "-connect", f"{host}:{port}"),
        *(("-starttls", protocol) if protocol else ()),
        *("-CAfile", str(ca_file), "-verify_hostname", name, "-verify_return_error", "-servername", name),
    ]
    run = subprocess.run(argv, input=b"", capture_output=True, timeout=30, check=False)
    out = run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", out, re.S)
    verified = run.returncode == 0 and "Verify return code: 0 (ok)" in out
    return Probe(verified, pem.group(0).encode() if pem else b"", out)
