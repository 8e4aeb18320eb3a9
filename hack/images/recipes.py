"""What each local test image holds: its name, Debian packages, files and runtime config.

These are TEST images for the real node (hack/realnode); images/ holds the production Dockerfiles.
Engine images carry the tag the operator's catalog asks for (so rendered StatefulSets use them as-is
with imagePullPolicy IfNotPresent), but hold Debian bookworm's engine build: MariaDB 10.11.x and
PostgreSQL 15.x. The exact Debian version is in the image label ``io.kubetrove.debian-version``.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .oci import ImageConfig

ROOT = Path(__file__).resolve().parents[2]  # the repository
FILES = Path(__file__).resolve().parent / "files"
SUITE = "bookworm"
# Every user the engines run as has the official images' uid/gid 999 (see the datastores strategies).
ENGINE_UID = 999
PYTHON_SITE = "/usr/local/lib/python3.11/dist-packages"  # Debian python3's site dir for local installs


@dataclass(frozen=True)
class Recipe:
    """One image. ``packages`` empty: no Debian rootfs; the layer is built from ``files`` alone."""

    name: str  # short name: cache file names, CLI arguments
    ref: str  # the image reference pods use
    config: ImageConfig
    packages: tuple[str, ...] = ()
    users: tuple[tuple[str, int], ...] = ()  # (name, uid=gid) created before any package installs
    files: dict[str, Path] = field(default_factory=dict)  # path in image -> host file (mode kept)
    agent: bool = False  # install the kubetrove package and its [agent] dependencies
    customize: tuple[str, ...] = ()  # extra mmdebstrap --customize-hook shell snippets ($1 = rootfs)


def _catalog_ref(engine: str, version: str) -> str:
    """The image the operator's catalog names for (engine, version)."""
    sys.path.insert(0, str(ROOT / "operator"))
    from kubetrove.datastores.registry import REGISTRY

    for key, store in REGISTRY.items():
        if str(key) == engine:
            return store.versions[version].image
    raise KeyError(f"no datastore {engine!r} in kubetrove.datastores.registry")


def agent_ref() -> str:
    """``DEFAULT_AGENT_IMAGE`` of the operator (read from source: importing handlers loads kopf)."""
    tree = ast.parse((ROOT / "operator/kubetrove/runtime/config.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DEFAULT_AGENT_IMAGE" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise KeyError("DEFAULT_AGENT_IMAGE not found in kubetrove/runtime/config.py")


def pause() -> Recipe:
    """The pod sandbox image: one static binary (built from pause.c)."""
    return Recipe("pause", "localhost/kubetrove/pause:1", ImageConfig(entrypoint=("/pause",), env=()))


def busybox() -> Recipe:
    """A tiny shell image for smoke tests (Debian's busybox-static and its applet links)."""
    return Recipe("busybox", "localhost/kubetrove/busybox:1", ImageConfig(cmd=("sh",)))


def agent() -> Recipe:
    """The agent sidecar: python3, kubetrove and its [agent] dependencies, plus the engines' client and
    backup tools the agent shells out to (version-matched with the engine images: same Debian).

    PostgreSQL's bin dir goes last on PATH: Debian links only some client tools into /usr/bin
    (pg_wrapper), not pg_verifybackup, which the restore init container runs; the production agent
    image is FROM the official postgres image, whose PATH has that dir too.
    """
    path = ImageConfig().env[0] + ":/usr/lib/postgresql/15/bin"
    return Recipe(
        "agent",
        agent_ref(),
        ImageConfig(entrypoint=("kubetrove-agent",), env=(path, *ImageConfig().env[1:], "LANG=C.UTF-8")),
        packages=("python3", "ca-certificates", "mariadb-client", "mariadb-backup", "postgresql-client-15"),
        users=(("kubetrove", ENGINE_UID),),
        agent=True,
    )


def mariadb() -> Recipe:
    """MariaDB (Debian's 10.11) with an official-image-compatible docker-entrypoint.sh."""
    return Recipe(
        "mariadb",
        _catalog_ref("mariadb", "10.11"),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",), cmd=("mariadbd",), env=(*ImageConfig().env, "LANG=C.UTF-8")
        ),
        packages=("mariadb-server", "mariadb-client"),
        users=(("mysql", ENGINE_UID),),
        files={"/usr/local/bin/docker-entrypoint.sh": FILES / "mariadb-entrypoint.sh"},
        customize=(
            # Debian binds to 127.0.0.1; the official image listens on every address (pod networking).
            "sed -i 's/^bind-address/#&/' \"$1/etc/mysql/mariadb.conf.d/50-server.cnf\"",
            'rm -rf "$1/var/lib/mysql" && mkdir -p "$1/var/lib/mysql" "$1/run/mysqld"',
        ),
    )


def postgresql() -> Recipe:
    """PostgreSQL (Debian's 15) with an official-image-compatible docker-entrypoint.sh."""
    path = "/usr/lib/postgresql/15/bin:" + ImageConfig().env[0].removeprefix("PATH=")
    return Recipe(
        "postgresql",
        _catalog_ref("postgresql", "15"),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), env=(f"PATH={path}", "LANG=C.UTF-8")
        ),
        packages=("postgresql-15",),
        users=(("postgres", ENGINE_UID),),
        files={"/usr/local/bin/docker-entrypoint.sh": FILES / "postgres-entrypoint.sh"},
        customize=(
            # postgresql-common's postinst creates a "main" cluster; the image starts with no data.
            'rm -rf "$1/var/lib/postgresql/15" "$1/etc/postgresql/15"',
            'mkdir -p "$1/var/run/postgresql" && chown 999:999 "$1/var/run/postgresql"',
        ),
    )


RECIPES = {"pause": pause, "busybox": busybox, "agent": agent, "mariadb": mariadb, "postgresql": postgresql}
