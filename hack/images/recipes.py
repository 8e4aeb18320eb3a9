"""What each image holds: its name, Debian packages, files and runtime config. One table (RECIPES)
is the single source of every image the project ships; there are no Dockerfiles.

Refs are ``name:tag`` relative to the image registry (the operator's KUBETROVE_IMAGE_REGISTRY, the
chart's ``imageRegistry``): engine images carry the name the operator's catalog asks for, the agent
and the operator theirs. Engine images hold Debian bookworm's engine build (MariaDB 10.11.x,
PostgreSQL 15.x); dpkg's versions are in ``<cache>/<name>.packages``.

Adding an engine image: a function returning its Recipe (packages, the uid its strategy runs as, an
entrypoint script in files/ if the strategy relies on one) and one RECIPES entry.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .oci import ImageConfig

ROOT = Path(__file__).resolve().parents[2]  # the repository
FILES = Path(__file__).resolve().parent / "files"
SUITE = "bookworm"
# Every user the engines run as has the official images' uid/gid 999 (see the datastores strategies).
ENGINE_UID = 999
OPERATOR_UID = 65532  # the chart's podSecurityContext.runAsUser (distroless' "nonroot")
PYTHON_SITE = "/usr/local/lib/python3.11/dist-packages"  # Debian python3's site dir for local installs


@dataclass(frozen=True)
class PythonApp:
    """A kubetrove command installed with its pyproject extra's dependencies (pinned there)."""

    extra: str  # the [project.optional-dependencies] key: "agent" or "operator"
    command: str  # the console script in /usr/local/bin (pyproject [project.scripts])
    module: str  # the module whose main() it runs


@dataclass(frozen=True)
class Recipe:
    """One image. ``packages`` empty: no Debian rootfs; the layer is built from ``files`` alone."""

    name: str  # short name: cache file names, CLI arguments
    ref: str  # the image reference pods use
    config: ImageConfig
    packages: tuple[str, ...] = ()
    users: tuple[tuple[str, int], ...] = ()  # (name, uid=gid) created before any package installs
    files: dict[str, Path] = field(default_factory=dict)  # path in image -> host file (mode kept)
    python: PythonApp | None = None  # install the kubetrove package, one extra's dependencies, a command
    customize: tuple[str, ...] = ()  # extra mmdebstrap --customize-hook shell snippets ($1 = rootfs)


def _catalog_ref(engine: str, version: str) -> str:
    """The image the operator's catalog names for (engine, version)."""
    sys.path.insert(0, str(ROOT / "operator"))
    from kubetrove.datastores.registry import REGISTRY

    for key, store in REGISTRY.items():
        if str(key) == engine:
            return store.versions[version].image
    raise KeyError(f"no datastore {engine!r} in kubetrove.datastores.registry")


def operator_setting(name: str) -> str:
    """A constant of the operator's runtime/config.py (read from source: importing handlers loads kopf)."""
    tree = ast.parse((ROOT / "operator/kubetrove/runtime/config.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise KeyError(f"{name} not found in kubetrove/runtime/config.py")


def default_registry() -> str:
    """The operator's default image registry (``DEFAULT_IMAGE_REGISTRY``): the local one on loopback."""
    return operator_setting("DEFAULT_IMAGE_REGISTRY")


def agent_ref() -> str:
    """The operator's default agent image (``DEFAULT_AGENT_IMAGE``, relative to the image registry)."""
    return operator_setting("DEFAULT_AGENT_IMAGE")


def project_version() -> str:
    """pyproject's version: the operator image's tag (the chart's appVersion)."""
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def pause() -> Recipe:
    """The pod sandbox image: one static binary (built from pause.c)."""
    return Recipe("pause", "pause:1", ImageConfig(entrypoint=("/pause",), env=()))


def busybox() -> Recipe:
    """A tiny shell image for smoke tests (Debian's busybox-static and its applet links)."""
    return Recipe("busybox", "busybox:1", ImageConfig(cmd=("sh",)))


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
        python=PythonApp("agent", "kubetrove-agent", "kubetrove.agent.main"),
    )


def operator() -> Recipe:
    """The operator: python3, kubetrove and its [operator] dependencies; runs as the chart's uid 65532,
    which has a passwd entry because kopf names its peer identity after getpass.getuser()."""
    return Recipe(
        "operator",
        f"operator:{project_version()}",
        ImageConfig(
            entrypoint=("kubetrove-operator",),
            env=(*ImageConfig().env, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"),
            user=f"{OPERATOR_UID}:{OPERATOR_UID}",
        ),
        packages=("python3", "ca-certificates"),
        users=(("nonroot", OPERATOR_UID),),
        python=PythonApp("operator", "kubetrove-operator", "kubetrove.handlers.main"),
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


# name -> recipe. The order is the build order of `make images` (small and shared first).
RECIPES: dict[str, Callable[[], Recipe]] = {
    "pause": pause,
    "busybox": busybox,
    "agent": agent,
    "operator": operator,
    "mariadb": mariadb,
    "postgresql": postgresql,
}
