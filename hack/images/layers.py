"""Build the layers of an image: a Debian root filesystem (mmdebstrap), a kubetrove command's Python
dependencies, and the kubetrove source. Each is a plain tar cached by the hash of its inputs, so a
kubetrove code change rebuilds only the small source layer.

mmdebstrap (Debian package, https://manpages.debian.org/bookworm/mmdebstrap/mmdebstrap.1.en.html) runs
in root mode and writes the tar itself; hooks get the root filesystem directory as ``$1``.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .recipes import PYTHON_SITE, ROOT, SUITE, PythonApp, Recipe

MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
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


def debian_rootfs(recipe: Recipe, dest: Path, apt_cache: Path, manifest: Path) -> None:
    """mmdebstrap a minbase rootfs with the recipe's packages, users, files and hooks into dest (tar)."""
    apt_cache.mkdir(parents=True, exist_ok=True)
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        "--quiet",
        '--aptopt=APT::Install-Recommends "false"',
        *(f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES),
        f"--include={','.join(recipe.packages)}",
        # Reuse downloaded .debs between builds (mmdebstrap's documented sync-in/sync-out recipe).
        "--skip=download/empty",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {apt_cache} /var/cache/apt/archives/",
        *(f"--essential-hook={h}" for h in _user_hook(recipe.users)),
        f"--customize-hook=sync-out /var/cache/apt/archives {apt_cache}",
        *(
            f'--customize-hook=install -D -m 0755 {_q(str(src))} "$1{dst}"'
            for dst, src in recipe.files.items()
        ),
        *(f"--customize-hook={h}" for h in recipe.customize),
        f"--customize-hook=dpkg-query --admindir=\"$1/var/lib/dpkg\" -W -f='${{Package}}=${{Version}}\\n'"
        f" > {_q(str(manifest))}",
        SUITE,
        str(dest),
        *MIRRORS,
    ]
    subprocess.run(argv, check=True)  # noqa: S603 (argv built here)


def files_layer(members: dict[str, Path], dest: Path) -> None:
    """A layer holding exactly these host files (image path -> host path), owned by root."""
    with tarfile.open(dest, "w") as tar:
        for path, src in sorted(members.items()):
            info = tar.gettarinfo(str(src), arcname=path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
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


def requirements(extra: str) -> list[str]:
    """kubetrove's runtime dependencies plus one extra's, from pyproject.toml (the pins)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"][extra]]


def pydeps_layer(extra: str, dest: Path) -> None:
    """An extra's dependencies, installed by pip for the image's python3.11 (the host's twin)."""
    with tempfile.TemporaryDirectory(prefix="kt-pydeps-") as tmp:
        site = Path(tmp) / "site"
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--only-binary=:all:", "--target", str(site), *requirements(extra)]  # fmt: skip
        subprocess.run(argv, check=True)  # noqa: S603 (argv built here)
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's shebang
        tree_layer(site, PYTHON_SITE, dest)


def command_script(app: PythonApp) -> str:
    """The console script pip would write for pyproject's [project.scripts] entry."""
    return f"#!/usr/bin/python3\nimport sys\n\nfrom {app.module} import main\n\nsys.exit(main())\n"


def source_layer(app: PythonApp, dest: Path) -> None:
    """The kubetrove package (byte-compiled: the root filesystem is read-only) and the app's command."""
    with tempfile.TemporaryDirectory(prefix="kt-src-") as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(ROOT / "operator/kubetrove", site / "kubetrove",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        compileall.compile_dir(site, quiet=1, ddir=PYTHON_SITE)
        script = Path(tmp) / app.command
        script.write_text(command_script(app))
        script.chmod(0o755)
        tree_layer(site, PYTHON_SITE, dest)
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
