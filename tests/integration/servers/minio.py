"""A private MinIO (real S3-compatible object storage) for backup tests: a temp dir, a free loopback port.

The binary is built from the Go module proxy by hack/build-minio.sh into ~/.cache/kubetrove/minio-<ver>/.
Stopped by PID. Each server gets fresh root credentials and one bucket.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetrove.agent.backup.s3 import s3_client
from kubetrove.agent.protocol import BackupTarget, S3Target
from tests.integration.servers._proc import cache_dir, free_port, stop, tail

BUCKET = "backups"


def minio_binary() -> Path:
    """The cached MinIO binary; raise (the tests then ERROR, never skip) when it was not built."""
    found = sorted(cache_dir().glob("minio-*/minio"))
    if not found:
        raise RuntimeError(f"no MinIO under {cache_dir()}: run hack/build-minio.sh (or hack/setup.sh)")
    return found[-1]


@dataclass
class MinioServer:
    """One running MinIO and its credentials."""

    base: Path
    port: int
    access_key: str
    secret_key: str
    bucket: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def target(self, prefix: str = "") -> BackupTarget:
        """A backup target in this server's bucket."""
        return BackupTarget(
            s3=S3Target(
                bucket=self.bucket,
                prefix=prefix,
                endpoint=self.endpoint,
                access_key_id=self.access_key,
                secret_access_key=self.secret_key,
            )
        )

    def client(self) -> Any:
        """A boto3 S3 client with the root credentials."""
        target = self.target().s3
        assert target is not None
        return s3_client(target)

    def stop(self) -> None:
        """Stop MinIO by its PID and delete its files."""
        stop(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


def start_minio(host: str = "127.0.0.1") -> MinioServer:
    """Start MinIO on a free port of ``host`` (loopback by default; the CNI bridge's gateway for real
    pods) with an empty bucket; raise if it cannot."""
    binary = minio_binary()
    base = Path(tempfile.mkdtemp(prefix="kt-minio-"))
    port, console = free_port(host), free_port()
    access, secret = "kt" + secrets.token_hex(6), secrets.token_urlsafe(24)
    log = base / "minio.log"
    env = {
        **os.environ,
        "MINIO_ROOT_USER": access,
        "MINIO_ROOT_PASSWORD": secret,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "HOME": str(base),  # MinIO writes ~/.minio; keep it in the temp dir
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                str(base / "data"),
                "--address",
                f"{host}:{port}",
                "--console-address",
                f"127.0.0.1:{console}",
                "--quiet",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = MinioServer(base, port, access, secret, BUCKET, proc, host)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{server.endpoint}/minio/health/ready", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            logged = tail(log)
            server.stop()
            raise RuntimeError(f"minio did not become ready:\n{logged}")
        time.sleep(0.3)
    server.client().create_bucket(Bucket=BUCKET)
    return server
