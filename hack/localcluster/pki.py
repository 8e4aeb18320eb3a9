"""A throw-away PKI for the local cluster (openssl) and the admin kubeconfig that uses it.

Layout (all in <state>/pki): ca.{crt,key} signs the apiserver's serving cert and the admin client cert
(O=system:masters, so RBAC lets it do anything); sa.{key,pub} signs and verifies ServiceAccount tokens.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import yaml

from .layout import CONTEXT

DAYS = "3650"
# Every name an in-cluster client or a test may use for the apiserver (10.0.0.1 = first service IP).
APISERVER_SANS = (
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
    "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n"
)


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise FileNotFoundError("openssl not found (apt-get install openssl)")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603 (fixed argv)


def _signed(pki: Path, name: str, subject: str, ext: str) -> None:
    """Key + certificate `name` for `subject`, signed by the local CA with extensions `ext`."""
    (pki / f"{name}.ext").write_text(ext)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=pki)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", DAYS, "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)  # fmt: skip


def ensure_pki(pki: Path) -> None:
    """Create the CA, serving, client and service-account keys unless they already exist."""
    if (pki / "admin.crt").is_file() and (pki / "sa.pub").is_file():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", DAYS, "-subj", "/CN=kubetrove-local-ca", cwd=pki)  # fmt: skip
    _signed(pki, "apiserver", "/CN=kube-apiserver", APISERVER_SANS)
    _signed(pki, "admin", "/O=system:masters/CN=kubetrove-admin", "extendedKeyUsage=clientAuth\n")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(pki: Path, port: int, dest: Path) -> None:
    """A self-contained admin kubeconfig (certificates inlined) for https://127.0.0.1:<port>."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": _b64(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": "kubetrove-admin",
                "user": {
                    "client-certificate-data": _b64(pki / "admin.crt"),
                    "client-key-data": _b64(pki / "admin.key"),
                },
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "kubetrove-admin"}}],
        "current-context": CONTEXT,
    }
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(dest)
