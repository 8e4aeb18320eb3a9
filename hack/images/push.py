"""Push built images to an OCI registry with crane (hack/build-registry.sh says why crane).

A push is skipped when the registry already serves the tag at the built manifest digest (one HTTP HEAD,
distribution-spec "pulling manifests": https://github.com/opencontainers/distribution-spec/blob/main/
spec.md#pulling-manifests), so a warm `make images` costs a few requests. crane pushes the manifest
bytes unchanged, so the digest the registry reports is the one hack/images computed.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from localcluster.layout import cache_root, pinned_version

from .build import Built, say
from .oci import MANIFEST_MEDIA


def crane() -> Path:
    """The crane binary of hack/build-registry.sh (FileNotFoundError says how to build it)."""
    exe = cache_root() / f"crane-{pinned_version('build-registry.sh', 'CRANE_VERSION')}" / "crane"
    if not exe.is_file():
        raise FileNotFoundError(f"{exe} missing: run `make setup` (hack/setup.d/65-registry.sh)")
    return exe


def remote_digest(repository: str, ref: str) -> str | None:
    """The manifest digest ``repository/ref`` has in its (plain HTTP, loopback) registry, None if absent."""
    host, _, path = repository.partition("/")
    name, _, tag = ref.rpartition(":")
    url = f"http://{host}/v2/{path + '/' if path else ''}{name}/manifests/{tag}"
    req = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_MEDIA})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (a registry URL we built)
            return str(resp.headers.get("Docker-Content-Digest") or "") or None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def push(built: Built, repository: str) -> bool:
    """Push ``built`` as ``repository/<built.ref>`` unless it is there already; True if it pushed."""
    target = f"{repository}/{built.ref}"
    if remote_digest(repository, built.ref) == built.digest:
        return False
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"kt-push-{built.name}-") as tmp:
        with tarfile.open(built.archive) as tar:
            tar.extractall(tmp, filter="data")
        # --insecure: plain HTTP (the registry is on loopback; crane would try HTTPS first elsewhere).
        argv = [str(crane()), "push", "--insecure", tmp, target]
        res = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 (argv built here)
    if res.returncode != 0:
        raise RuntimeError(f"crane push {target} failed: {res.stderr.strip()}")
    pushed = remote_digest(repository, built.ref)
    if pushed != built.digest:
        raise RuntimeError(f"{target}: the registry serves {pushed}, built {built.digest}")
    say(f"pushed {target} ({time.monotonic() - t0:.0f}s)")
    return True


def tag(repository: str, ref: str, new_tag: str) -> str:
    """Give ``repository/ref`` a second tag in the registry (same manifest); the new reference."""
    argv = [str(crane()), "tag", "--insecure", f"{repository}/{ref}", new_tag]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 (argv built here)
    if res.returncode != 0:
        raise RuntimeError(f"crane tag {repository}/{ref} {new_tag} failed: {res.stderr.strip()}")
    return f"{repository}/{ref.rpartition(':')[0]}:{new_tag}"
