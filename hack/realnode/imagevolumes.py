"""Volumes that can fill up and grow: a sparse image file per volume, formatted XFS and loop-mounted.

Layout under the provisioner's volumes directory: ``<pv>.img`` (the image) and ``<pv>/`` (its mount
point, the PV's `local` path). kubelet bind-mounts that directory into the pod, so the pod sees a real
filesystem of the claimed size: writes past it fail with ENOSPC, and growing it online shows at once.

Why XFS and not ext4: growing a mounted ext4 (resize2fs, EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE,
which this machine's capability bounding set lacks (resize2fs: "Permission denied to resize
filesystem"); xfs_growfs needs only CAP_SYS_ADMIN. mkfs.xfs refuses filesystems under 300 MB (its
log minimum since xfsprogs 5.19); the fstests variables below lift that, for the 64-128 MiB volumes
tests fill on purpose. A 64 MiB volume then shows 58.7 MiB (the log and metadata take the rest). XFS
has no root-reserved blocks and allocates inodes on demand, so no -m or inode ratio to choose.

Nothing here touches a path outside the volumes directory it is given.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

MKFS = ("mkfs.xfs", "-q")
SMALL_FS_ENV = {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}  # mkfs.xfs: allow < 300 MB


def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    res = subprocess.run(  # noqa: S603 (our tools on our paths)
        list(argv), capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if res.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")


def image_of(mount_point: Path) -> Path:
    """The image file behind a volume's mount point."""
    return mount_point.with_name(f"{mount_point.name}.img")


def mounted(mount_point: Path) -> str | None:
    """The device mounted at mount_point in our namespace, if any."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        dev, point = line.split()[:2]
        if point.encode().decode("unicode_escape") == str(mount_point):
            return dev
    return None


def create(mount_point: Path, size: int) -> bool:
    """A sparse image of `size` bytes, formatted and mounted at mount_point; False if it existed."""
    image = image_of(mount_point)
    made = not image.exists()
    if made:
        tmp = image.with_suffix(".tmp")  # a half-made image never looks like a volume
        with tmp.open("wb") as fh:
            fh.truncate(size)
        _run(*MKFS, str(tmp), env=SMALL_FS_ENV)
        tmp.rename(image)
    mount(mount_point)
    return made


def mount(mount_point: Path) -> None:
    """Loop-mount the volume's image at mount_point unless it is mounted already. `-o loop` sets the
    loop device's autoclear flag: it detaches itself once the last mount (kubelet's too) is gone."""
    mount_point.mkdir(exist_ok=True)
    if mounted(mount_point) is None:
        _run("mount", "-o", "loop", str(image_of(mount_point)), str(mount_point))


def grow(mount_point: Path, size: int) -> None:
    """Grow the image to `size` bytes and the mounted filesystem with it, online. Never shrinks."""
    image = image_of(mount_point)
    dev = mounted(mount_point)
    if dev is None or not dev.startswith("/dev/loop"):
        raise OSError(f"{mount_point} is not loop-mounted")
    if image.stat().st_size < size:
        with image.open("r+b") as fh:
            fh.truncate(size)
    _run("losetup", "--set-capacity", dev)  # the loop device learns the image's new size
    _run("xfs_growfs", str(mount_point))


def loops_under(volumes: Path) -> dict[str, Path]:
    """Loop devices whose backing file lies in `volumes`: device -> backing file."""
    found = {}
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        path = Path(backing.read_text().strip().removesuffix(" (deleted)"))
        if path.parent == volumes:
            found[f"/dev/{backing.parts[3]}"] = path
    return found


def remove(mount_point: Path) -> None:
    """Unmount (lazily if a pod still holds it), detach, delete the image and the mount point."""
    image = image_of(mount_point)
    if mounted(mount_point) is not None:
        try:
            _run("umount", str(mount_point))
        except OSError:
            _run("umount", "-l", str(mount_point))
    for dev, backing in loops_under(mount_point.parent).items():
        if backing == image:
            with contextlib.suppress(OSError):  # autoclear may have detached it already
                _run("losetup", "-d", dev)
    image.unlink(missing_ok=True)
    image.with_suffix(".tmp").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        mount_point.rmdir()  # only once empty: a mount point still busy keeps its directory


def release_all(volumes: Path) -> list[str]:
    """Unmount every mount under `volumes` and detach every loop device backed by an image in it; what
    was released. For a node starting or stopping (nothing uses the volumes then): a crashed node's
    leftover mount or device would pin its image. The images stay: a kept cluster's PVs still name
    them; the provisioner mounts them again at start, or deletes those no PV names."""
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point.startswith(f"{volumes}/"):
            points.append(point)
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        try:
            _run("umount", point)
        except OSError:
            _run("umount", "-l", point)
    devices = list(loops_under(volumes))
    for dev in devices:
        with contextlib.suppress(OSError):
            _run("losetup", "-d", dev)
    return points + devices
