"""Build the layers of an image: a Debian root filesystem (mmdebstrap), a kubetrove command's Python
dependencies, and the kubetrove source. Each is a plain tar cached by the hash of its inputs, so a
kubetrove code change rebuilds only the small source layer.

mmdebstrap (Debian package, https://manpages.debian.org/bookworm/mmdebstrap/mmdebstrap.1.en.html) runs
in root mode and writes the tar itself; hooks get the root filesystem directory as ``$1``.
"""

from __future__ import annotations

import compileall
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .recipes import ROOT, PythonApp, Recipe, Suite

# Docs, man pages and translations are dead weight in a container layer.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")


def _q(text: str) -> str:
    """Single-quote for the shell snippets mmdebstrap runs."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _user_hook(users: Iterable[tuple[str, int]]) -> list[str]:
    """Pre-create users with fixed uid/gid before any package's postinst picks a dynamic one."""
    hooks = []
    for name, uid in users:
        hooks += [
            f"echo '{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin' >> \"$1/etc/passwd\"",
            f"echo '{name}:x:{uid}:' >> \"$1/etc/group\"",
        ]
    return hooks


def _python_check(recipe: Recipe) -> list[str]:
    """A hook failing the build when the suite's python3 is not the one its Python layers are built for."""
    if recipe.python is None:
        return []
    want = f"python{recipe.suite.python}"
    return [
        f'test -x "$1/usr/bin/{want}" || {{ echo "{recipe.suite.name} has no {want}:'
        f' update Suite.python in hack/images/recipes.py" >&2; exit 1; }}'
    ]


def debian_rootfs(recipe: Recipe, dest: Path, apt_cache: Path, manifest: Path) -> None:
    """mmdebstrap a minbase rootfs of the recipe's suite with its packages, users and hooks into
    dest (tar); dpkg's package list goes to ``manifest``. The .deb cache is shared by every suite (the
    file names carry the version, so two suites' builds of a package never collide). The recipe's files
    are a layer of their own (build.py), so an entrypoint edit rebuilds no root filesystem."""
    apt_cache.mkdir(parents=True, exist_ok=True)
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        "--quiet",
        '--aptopt=APT::Install-Recommends "false"',
        *(f"--aptopt={opt}" for opt in recipe.suite.aptopts),
        *(f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES),
        f"--include={','.join(recipe.packages)}",
        # Reuse downloaded .debs between builds (mmdebstrap's documented sync-in/sync-out recipe).
        "--skip=download/empty",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {apt_cache} /var/cache/apt/archives/",
        *(f"--essential-hook={h}" for h in _user_hook(recipe.users)),
        f"--customize-hook=sync-out /var/cache/apt/archives {apt_cache}",
        *(f"--customize-hook={h}" for h in recipe.customize),
        *(f"--customize-hook={h}" for h in _python_check(recipe)),
        f"--customize-hook=dpkg-query --admindir=\"$1/var/lib/dpkg\" -W -f='${{Package}}=${{Version}}\\n'"
        f" > {_q(str(manifest))}",
        recipe.suite.name,
        str(dest),
        *recipe.suite.mirrors,
    ]
    # One retry: a mirror in the middle of its sync fails `apt-get update` for a minute with
    # mismatching index hashes.
    if subprocess.run(argv, check=False).returncode != 0:  # noqa: S603 (argv built here)
        time.sleep(30)
        subprocess.run(argv, check=True)  # noqa: S603 (argv built here)


def files_layer(members: dict[str, Path], dest: Path) -> None:
    """A layer holding exactly these host files (image path -> host path), owned by root, mode 0755.

    Every recipe file is a program (an entrypoint), and the mode is set here rather than taken from the
    checkout: a file committed without its exec bit once shipped an image whose entrypoint could not
    run ("exec: docker-entrypoint.sh: Permission denied", exit 126)."""
    with tarfile.open(dest, "w") as tar:
        for path, src in sorted(members.items()):
            info = tar.gettarinfo(str(src), arcname=path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755
            with src.open("rb") as fh:
                tar.addfile(info, fh)


def tree_layer(tree: Path, prefix: str, dest: Path) -> None:
    """A layer holding the directory tree under ``prefix`` in the image, owned by root."""

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(dest, "w") as tar:
        for child in sorted(tree.iterdir()):
            tar.add(child, arcname=f"{prefix.strip('/')}/{child.name}", filter=owned_by_root)


def _distribution(requirement: str) -> str:
    """The distribution a pyproject requirement names (``psycopg[binary]==3.3.9`` -> ``psycopg``)."""
    return re.split(r"[\s\[=<>!~;]", requirement, maxsplit=1)[0].lower()


def requirements(app: PythonApp) -> list[str]:
    """kubetrove's runtime dependencies plus its extra's, from pyproject.toml (the pins), less the
    distributions the app leaves out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"][app.extra]]
    unknown = set(app.exclude) - {_distribution(r) for r in reqs}
    if unknown:
        raise ValueError(f"{app.command}: excluded distributions not in [{app.extra}]: {sorted(unknown)}")
    return [r for r in reqs if _distribution(r) not in app.exclude]


# The wheel platforms a glibc >= 2.28 x86_64 system accepts, newest first: pip takes an explicit
# --platform literally (it does not add the older manylinux tags a native install would accept).
MANYLINUX = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


def cross_python(suite: Suite) -> bool:
    """True when the suite's python3 is not the one running this build (its wheels are chosen for it)."""
    return suite.python != f"{sys.version_info.major}.{sys.version_info.minor}"


def pydeps_layer(app: PythonApp, suite: Suite, dest: Path) -> None:
    """An app's dependencies, installed by pip for the suite's python3.

    For the host's own python (bookworm's 3.11) pip installs as usual. For another version pip picks
    binary wheels for that interpreter (``--python-version``, manylinux x86_64: every image here is
    amd64) and compiles nothing: the host's byte code would be for the wrong interpreter.
    """
    with tempfile.TemporaryDirectory(prefix="kt-pydeps-") as tmp:
        site = Path(tmp) / "site"
        target: list[str] = []
        if cross_python(suite):
            platforms = [arg for tag in MANYLINUX for arg in ("--platform", tag)]
            target = ["--python-version", suite.python, "--implementation", "cp", *platforms, "--no-compile"]
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--only-binary=:all:", *target, "--target", str(site), *requirements(app)]  # fmt: skip
        subprocess.run(argv, check=True)  # noqa: S603 (argv built here)
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's shebang
        tree_layer(site, suite.python_site, dest)


def command_script(app: PythonApp) -> str:
    """The console script pip would write for pyproject's [project.scripts] entry, plus a SIGTERM handler
    installed before the imports.

    Why: the command is PID 1 of its container, and the kernel drops a signal PID 1 has no handler for.
    The imports take seconds (over a minute on a busy node, seen in CI) before aiohttp or kopf install
    their own handlers; a SIGTERM in that window (a liveness restart, a pod deletion) was lost, and the
    kubelet waited the whole grace period (300 s) before it killed the container.
    """
    return (
        "#!/usr/bin/python3\nimport signal\nimport sys\n\n"
        "# PID 1 ignores a signal it has no handler for: exit on SIGTERM until the app installs its own.\n"
        "signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))\n\n"
        f"from {app.module} import main  # noqa: E402\n\nsys.exit(main())\n"
    )


def app_version(app: PythonApp) -> str:
    """The version the app's image reports: its own, else pyproject's."""
    return app.version or str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def version_module(version: str) -> str:
    """kubetrove/version.py as an image holds it: the version its tag names."""
    return f'"""kubetrove\'s version (written by hack/images for this image)."""\n\nVERSION = {version!r}\n'


def source_layer(app: PythonApp, suite: Suite, dest: Path) -> None:
    """The kubetrove package, with the app's version in kubetrove/version.py, and the app's command.
    Byte-compiled (the root filesystem is read-only) when the suite's python3 is the host's; another
    interpreter compiles it in memory at each start."""
    with tempfile.TemporaryDirectory(prefix="kt-src-") as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(ROOT / "operator/kubetrove", site / "kubetrove",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        (site / "kubetrove/version.py").write_text(version_module(app_version(app)))
        if not cross_python(suite):
            compileall.compile_dir(site, quiet=1, ddir=suite.python_site)
        script = Path(tmp) / app.command
        script.write_text(command_script(app))
        script.chmod(0o755)
        tree_layer(site, suite.python_site, dest)
        with tarfile.open(dest, "a") as tar:
            info = tar.gettarinfo(str(script), arcname=f"usr/local/bin/{app.command}")
            info.uid = info.gid = 0
            with script.open("rb") as fh:
                tar.addfile(info, fh)


def kubetrove_sources() -> list[Path]:
    """Every file the source layer copies (its cache key)."""
    pkg = ROOT / "operator/kubetrove"
    return sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def compile_static(source: Path, dest: Path) -> None:
    """gcc -static -Os: a self-contained binary for an image with no libc."""
    argv = ["gcc", "-static", "-Os", "-s", "-o", str(dest), str(source)]
    subprocess.run(argv, check=True)  # noqa: S603 (gcc from PATH, our own paths)


def busybox_tree(dest: Path) -> None:
    """A root filesystem of Debian's busybox-static and one link per applet."""
    exe = Path("/bin/busybox")
    if not exe.is_file():
        raise FileNotFoundError("/bin/busybox missing: apt-get install busybox-static")
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(exe, dest / "bin/busybox")
    applets = subprocess.run([str(exe), "--list"], check=True, capture_output=True, text=True).stdout.split()  # noqa: S603
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", dest / "bin" / applet)
    for d in ("tmp", "etc", "proc", "sys", "dev"):
        (dest / d).mkdir(exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
