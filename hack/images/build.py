"""Build the local test images on demand, cached by content hash under ~/.cache/kubetrove/images/.

Cache layout: ``layers/<key>.tar`` (one per layer, key = hash of what goes into it) and
``<name>-<key>.tar`` (the OCI archive, key = hash of its layers, config and ref) with ``.json`` beside
it (ref and manifest digest). A build happens only when a key is missing; ``force`` rebuilds.
An flock on the cache directory keeps two sessions from building the same image at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from . import layers as L
from .oci import normalized, write_archive
from .recipes import Recipe, check_versions, default_registry
from .table import RECIPES

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Where images are cached (same root as hack/build-*.sh)."""
    root = Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))
    return root / "images"


@dataclass(frozen=True)
class Built:
    """A built image archive: its ref (``name:tag`` in the registry), manifest digest, archive path."""

    name: str
    ref: str
    digest: str
    archive: Path

    @property
    def full_ref(self) -> str:
        """The name in the default image registry (what the archive registers with `ctr images import`)."""
        return normalized(f"{default_registry()}/{self.ref}")


def say(msg: str) -> None:
    """Progress line, flushed (shown live by `make setup` and CI)."""
    print(f"images: {msg}", flush=True)


def _hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:20]


def _files_hash(paths: Sequence[Path]) -> str:
    return _hash(*(p.name.encode() + b"\0" + p.read_bytes() for p in paths))


def _tree_hash(tree: Path) -> str:
    """Every file under ``tree``: relative path, mode and content (what tree_layer copies)."""
    if not tree.is_dir():
        raise FileNotFoundError(f"{tree}: no such directory (the recipe's fetch command fills it)")
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    return _hash(*(f"{p.relative_to(tree)}:{p.stat().st_mode & 0o7777:o}".encode() + b"\0" + p.read_bytes()
                   for p in files))  # fmt: skip


def locked() -> contextlib.AbstractContextManager[None]:
    """The image cache's lock: builds take it, and so do pushes and the registry's garbage collection
    (push.py, realnode), so no collection runs while a blob is uploaded. Not reentrant (flock)."""
    return _locked(cache_dir())


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


LayerBuild = Callable[[Path], None]


def _layer_plan(recipe: Recipe, work: Path) -> list[tuple[str, str, LayerBuild]]:
    """(label, cache key, builder) for each layer of the recipe, bottom first."""
    if recipe.name == "pause":
        source = HERE / "pause.c"

        def pause(dest: Path) -> None:
            L.compile_static(source, work / "pause")
            L.files_layer({"/pause": work / "pause"}, dest)

        return [("pause", _hash("pause", source.read_bytes()), pause)]
    if recipe.name == "busybox":

        def busybox(dest: Path) -> None:
            L.busybox_tree(work / "bb")
            L.tree_layer(work / "bb", "/", dest)

        return [("busybox", _hash("busybox", Path("/bin/busybox").read_bytes()), busybox)]
    rootfs_key = _hash(
        "rootfs",
        json.dumps([recipe.packages, recipe.users, recipe.customize, L.DPKG_EXCLUDES]),
        json.dumps([recipe.suite.name, recipe.suite.mirrors, recipe.suite.aptopts, recipe.suite.python]),
        # The recipe of the rootfs itself, not all of layers.py: editing another layer's code must not
        # rebuild every Debian rootfs.
        inspect.getsource(L.debian_rootfs),
        inspect.getsource(L._user_hook),
        inspect.getsource(L._python_check),
    )
    manifest = packages_file(rootfs_key)

    def rootfs(dest: Path) -> None:
        L.debian_rootfs(recipe, dest, cache_dir() / "apt-archives", manifest)
        # Before the layer is cached: an image whose contents contradict its tag is never written.
        check_versions(recipe.name, recipe.expect, manifest.read_text())

    plan: list[tuple[str, str, LayerBuild]] = [("rootfs", rootfs_key, rootfs)]
    for dst, src in sorted(recipe.trees.items()):  # a layer each: a cache directory or a repo one
        tree_key = _hash("tree", dst, _tree_hash(src))
        plan.append((f"tree {dst}", tree_key, lambda dest, d=dst, s=src: L.tree_layer(s, d, dest)))
    if recipe.files:  # a layer of their own: editing an entrypoint script rebuilds no root filesystem
        files_key = _hash(
            "files-0755", *(f"{dst}={_files_hash([src])}" for dst, src in sorted(recipe.files.items()))
        )
        plan.append(("files", files_key, lambda dest: L.files_layer(dict(recipe.files), dest)))
    app, suite = recipe.python, recipe.suite
    if app is not None:
        # The interpreter's version is part of both keys only when it is not the host's (the same
        # layers as before for bookworm's python).
        python = (suite.python,) if L.cross_python(suite) else ()
        reqs = json.dumps(L.requirements(app))
        plan.append(("pydeps", _hash("pydeps", reqs, *python), lambda dest: L.pydeps_layer(app, suite, dest)))
        src_key = _hash("src", _files_hash(L.kubetrove_sources()), L.command_script(app), app.command,
                        L.version_module(L.app_version(app)), *python)  # fmt: skip
        plan.append(("src", src_key, lambda dest: L.source_layer(app, suite, dest)))
    return plan


def packages_file(rootfs_key: str) -> Path:
    """dpkg's package list of a cached root filesystem layer (``name=version`` lines)."""
    return cache_dir() / "layers" / f"{rootfs_key}.packages"


def _ensure_layer(label: str, key: str, build: LayerBuild) -> Path:
    dest = cache_dir() / "layers" / f"{key}.tar"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    partial = dest.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    build(partial)
    partial.replace(dest)
    say(f"  layer {label} built in {time.monotonic() - t0:.0f}s ({dest.stat().st_size >> 20} MiB)")
    return dest


def ensure(name: str, *, force: bool = False) -> Built:
    """The cached archive of image `name`, built first if missing (or if force)."""
    return ensure_recipe(RECIPES[name](), force=force)


def ensure_recipe(recipe: Recipe, *, force: bool = False) -> Built:
    """The cached archive of ``recipe`` (one of RECIPES, or a variant a test builds), built if missing."""
    name = recipe.name
    if recipe.fetch:
        subprocess.run(recipe.fetch, check=True)  # noqa: S603 (the recipe's own argv)
    with _locked(cache_dir()), tempfile.TemporaryDirectory(prefix=f"kt-img-{name}-") as tmp:
        plan = _layer_plan(recipe, Path(tmp))
        if force:
            for _, key, _ in plan:
                (cache_dir() / "layers" / f"{key}.tar").unlink(missing_ok=True)
        keys = [key for _, key, _ in plan]
        config = json.dumps(asdict(recipe.config))
        oci_code = (HERE / "oci.py").read_bytes()
        image_key = _hash(default_registry(), recipe.ref, config, *keys, oci_code)
        archive = cache_dir() / f"{name}-{image_key}.tar"
        meta = archive.with_suffix(".json")
        if archive.is_file() and meta.is_file():
            info = json.loads(meta.read_text())
            return Built(name, info["ref"], info["digest"], archive)
        say(f"building {name} ({recipe.ref})")
        t0 = time.monotonic()
        layer_files = [_ensure_layer(label, key, build) for label, key, build in plan]
        if recipe.packages:  # the rootfs layer's dpkg list, under the image's name for people to read
            shutil.copyfile(packages_file(keys[0]), cache_dir() / f"{name}.packages")
        digest = write_archive(layer_files, f"{default_registry()}/{recipe.ref}", recipe.config, archive)
        meta.write_text(json.dumps({"ref": recipe.ref, "digest": digest, "layers": keys}))
        _prune(name, keep=archive)
        say(
            f"built {name} in {time.monotonic() - t0:.0f}s: {archive.name}"
            f" ({archive.stat().st_size >> 20} MiB)"
        )
        return Built(name, recipe.ref, digest, archive)


def _prune(name: str, keep: Path) -> None:
    """Drop older archives of `name`, then every layer no remaining archive uses."""
    own = re.compile(re.escape(name) + r"-[0-9a-f]{20}\.tar")  # not agent-mariadb-… for "agent"
    for old in cache_dir().glob(f"{name}-*.tar"):
        if old != keep and own.fullmatch(old.name):
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
    used: set[str] = set()
    for meta in cache_dir().glob("*.json"):
        used.update(json.loads(meta.read_text()).get("layers", []))
    for layer in (cache_dir() / "layers").glob("*.tar"):
        if layer.stem not in used:
            layer.unlink()
            layer.with_suffix(".packages").unlink(missing_ok=True)


def remove_cache() -> None:
    """Delete every cached image and layer (the next ensure rebuilds from scratch)."""
    shutil.rmtree(cache_dir(), ignore_errors=True)
