"""Write an OCI image archive from layer tars: a tarred OCI image layout, which `ctr images import`
reads as is and `crane push` reads once extracted (push.py).

Why by hand: the machines have no Docker, and an OCI layout is four small JSON documents plus the
layer blobs (image-spec: https://github.com/opencontainers/image-spec/blob/main/image-layout.md).
Layers stay uncompressed: the registry is on loopback, and gzip in Python would cost more time than
the disk it saves.

Invariant: every blob is stored under its own sha256, and the index names the image twice, as
`io.containerd.image.name` (what `ctr import` registers) and `org.opencontainers.image.ref.name`.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (what a Dockerfile's ENTRYPOINT/CMD/ENV/USER set)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    workdir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)


def normalized(ref: str) -> str:
    """The fully qualified name containerd stores (``mariadb:1`` -> ``docker.io/library/mariadb:1``)."""
    name = ref
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _descriptor(media: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media, "digest": f"sha256:{digest}", "size": size, **extra}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    _add_bytes(tar, f"blobs/sha256/{digest}", data)
    return digest


def write_archive(layers: list[Path], ref: str, config: ImageConfig, dest: Path) -> str:
    """Write the OCI archive of ``ref`` (layers bottom first) to dest; the manifest digest (sha256:...)."""
    digests = [_sha256_file(layer) for layer in layers]
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(config.entrypoint) or None,
            "Cmd": list(config.cmd) or None,
            "Env": list(config.env),
            "User": config.user,
            "WorkingDir": config.workdir,
            "Labels": config.labels,
        },
        # An uncompressed layer's diff ID is its own digest.
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
        "history": [{"created_by": "kubetrove hack/images (mmdebstrap)"}],
    }
    tmp = dest.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        for layer, digest in zip(layers, digests, strict=True):
            tar.add(layer, arcname=f"blobs/sha256/{digest}")
        config_bytes = json.dumps(image_config, sort_keys=True).encode()
        config_digest = _blob(tar, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA,
            "config": _descriptor(CONFIG_MEDIA, config_digest, len(config_bytes)),
            "layers": [
                _descriptor(LAYER_MEDIA, d, layer.stat().st_size)
                for layer, d in zip(layers, digests, strict=True)
            ],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = _blob(tar, manifest_bytes)
        full = normalized(ref)
        index = {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA,
            "manifests": [
                _descriptor(
                    MANIFEST_MEDIA,
                    manifest_digest,
                    len(manifest_bytes),
                    annotations={
                        "io.containerd.image.name": full,
                        "org.opencontainers.image.ref.name": full.rsplit(":", 1)[1],
                    },
                    platform={"architecture": "amd64", "os": "linux"},
                )
            ],
        }
        _add_bytes(tar, "index.json", json.dumps(index, sort_keys=True).encode())
    tmp.replace(dest)
    return f"sha256:{manifest_digest}"
