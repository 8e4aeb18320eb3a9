"""A tiny dynamic provisioner: PVCs of the real node's StorageClass become `local` PVs on directories.

Why not rancher's local-path-provisioner: it runs as a pod and creates helper pods (more images to
build, and it needs the in-cluster API address, which this cluster does not publish). This process runs
on the host beside kubelet, with the admin kubeconfig, and does the same job for one node:

- a Pending PVC of class --storage-class whose ``volume.kubernetes.io/selected-node`` (set by the
  scheduler: the class is WaitForFirstConsumer) is --node gets a PV ``pvc-<uid>``: a `local` volume on
  ``--volumes/<pv>``, pinned to the node, pre-bound through ``claimRef`` (KCM's binder finishes);
- a Released PV it provisioned with reclaim policy Delete loses its directory, then the PV is deleted.

`local` (not hostPath) because kubelet applies the pod's fsGroup to local volumes, so engines running
as uid 999 can write their data directory. Polls every second: simple, and cheap at test scale.

With --image-volumes (a second process, for the expandable class) each volume is a size-limited XFS
image loop-mounted at that directory (imagevolumes.py), and the process is also the class's resizer:
a bound claim asking for more gets its image and filesystem grown online, then the PV's capacity and
the claim's status say so (resize.py). At start it mounts the images of its existing PVs again (a
restarted node) and deletes images no PV names (a cluster restarted from an empty etcd).
Run: python provisioner.py --kubeconfig K --volumes DIR --node N --storage-class C --provisioner P
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

if __package__:
    from . import imagevolumes, resize
else:  # run as a script (node.py starts it so): the siblings are on sys.path
    import imagevolumes
    import resize

SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
MERGE_PATCH = "application/merge-patch+json"
log = logging.getLogger("provisioner")


def pv_manifest(pvc: Any, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """The PV for one claim: its size and modes, our class, pinned to the node, pre-bound to the claim."""
    meta = pvc.metadata
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta.uid}", "annotations": {PROVISIONED_BY: args.provisioner}},
        "spec": {
            "capacity": {"storage": pvc.spec.resources.requests["storage"]},
            "accessModes": pvc.spec.access_modes,
            "volumeMode": pvc.spec.volume_mode or "Filesystem",
            "storageClassName": args.storage_class,
            "persistentVolumeReclaimPolicy": "Delete",
            "local": {"path": str(path)},
            "claimRef": {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [args.node]}
                        ]}
                    ]
                }
            },
        },
    }  # fmt: skip


def provision(core: client.CoreV1Api, args: argparse.Namespace) -> None:
    """Create a PV for every claim that waits for one on our node."""
    for pvc in core.list_persistent_volume_claim_for_all_namespaces().items:
        meta, spec = pvc.metadata, pvc.spec
        if spec.storage_class_name != args.storage_class or spec.volume_name or pvc.status.phase != "Pending":
            continue
        if (meta.annotations or {}).get(SELECTED_NODE) != args.node or meta.deletion_timestamp:
            continue
        path = Path(args.volumes) / f"pvc-{meta.uid}"
        if args.image_volumes:
            t0 = time.monotonic()
            if imagevolumes.create(path, int(parse_quantity(spec.resources.requests["storage"]))):
                log.info("made and mounted %s in %.2fs", imagevolumes.image_of(path), time.monotonic() - t0)
        else:
            path.mkdir(parents=True, exist_ok=True)
        try:
            core.create_persistent_volume(pv_manifest(pvc, args, path))
            log.info("provisioned pvc-%s for %s/%s at %s", meta.uid, meta.namespace, meta.name, path)
        except ApiException as exc:
            if exc.status != 409:  # 409: made on an earlier pass, KCM has not bound it yet
                raise


def our_volumes(core: client.CoreV1Api, args: argparse.Namespace) -> list[Any]:
    """The PVs this process provisioned."""
    return [pv for pv in core.list_persistent_volume().items
            if (pv.metadata.annotations or {}).get(PROVISIONED_BY) == args.provisioner]  # fmt: skip


def local_path(pv: Any, args: argparse.Namespace) -> Path | None:
    """The PV's directory if it is in our volumes directory: never act outside it, whatever a PV says."""
    path = Path(pv.spec.local.path)
    return path if path.parent == Path(args.volumes) else None


def reclaim(core: client.CoreV1Api, args: argparse.Namespace) -> None:
    """Delete the directory (or image), then the PV, of every Released volume we provisioned."""
    for pv in our_volumes(core, args):
        if pv.status.phase != "Released" or pv.spec.persistent_volume_reclaim_policy != "Delete":
            continue
        path = local_path(pv, args)
        if path and args.image_volumes:
            imagevolumes.remove(path)
        elif path:
            shutil.rmtree(path, ignore_errors=True)
        try:
            core.delete_persistent_volume(pv.metadata.name)
            log.info("deleted %s and %s", pv.metadata.name, path)
        except ApiException as exc:
            if exc.status != 404:
                raise


def grow(core: client.CoreV1Api, args: argparse.Namespace) -> None:
    """Act as the external resizer of our class: grow every volume whose claim asks for more."""
    volumes = {pv.metadata.name: pv for pv in our_volumes(core, args)}
    for pvc in core.list_persistent_volume_claim_for_all_namespaces().items:
        pv = volumes.get(pvc.spec.volume_name or "")
        path = local_path(pv, args) if pv and pvc.status.phase == "Bound" else None
        if pv is None or path is None:
            continue
        requested = pvc.spec.resources.requests["storage"]
        have = pv.spec.capacity["storage"]
        claimed = (pvc.status.capacity or {}).get("storage")
        todo = resize.step(int(parse_quantity(requested)), int(parse_quantity(have)),
                           int(parse_quantity(claimed)) if claimed else None)  # fmt: skip
        if todo is resize.Step.NOTHING:
            continue
        meta = pvc.metadata
        conditions = core.api_client.sanitize_for_serialization(pvc.status.conditions or [])
        if todo is resize.Step.GROW:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            core.patch_namespaced_persistent_volume_claim_status(
                meta.name, meta.namespace, resize.resizing_patch(conditions, requested, now),
                _content_type=MERGE_PATCH,
            )  # fmt: skip
            t0 = time.monotonic()
            imagevolumes.grow(path, int(parse_quantity(requested)))
            log.info(
                "grew %s from %s to %s in %.2fs", pv.metadata.name, have, requested, time.monotonic() - t0
            )
            body = {"spec": {"capacity": {"storage": requested}}}
            core.patch_persistent_volume(pv.metadata.name, body, _content_type=MERGE_PATCH)
            have, conditions = requested, []  # the Resizing condition set above goes too
        core.patch_namespaced_persistent_volume_claim_status(
            meta.name, meta.namespace, resize.finished_patch(conditions, have), _content_type=MERGE_PATCH
        )
        log.info("%s/%s now has %s", meta.namespace, meta.name, have)


def adopt(core: client.CoreV1Api, args: argparse.Namespace) -> None:
    """At start: mount the images of our PVs again, delete the images no PV of ours names."""
    names = set()
    for pv in our_volumes(core, args):
        path = local_path(pv, args)
        if path and imagevolumes.image_of(path).exists():
            imagevolumes.mount(path)
            names.add(path.name)
    for image in Path(args.volumes).glob("*.img"):
        if image.stem not in names:
            imagevolumes.remove(image.with_suffix(""))
            log.info("removed %s: no PV of ours names it", image)
    for tmp in Path(args.volumes).glob("*.tmp"):  # an image whose mkfs a crash cut short
        tmp.unlink()


def main() -> None:
    """Poll forever (the harness stops this process by PID)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--kubeconfig", "--volumes", "--node", "--storage-class", "--provisioner"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--image-volumes", action="store_true", help="size-limited, growable volumes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    core = client.CoreV1Api(config.new_client_from_config(config_file=args.kubeconfig))
    Path(args.volumes).mkdir(parents=True, exist_ok=True)
    adopted = not args.image_volumes
    log.info("watching class %s for node %s; volumes in %s", args.storage_class, args.node, args.volumes)
    while True:
        try:
            if not adopted:  # before anything else, once
                adopt(core, args)
                adopted = True
            provision(core, args)
            reclaim(core, args)
            if args.image_volumes:
                grow(core, args)
        except (ApiException, OSError) as exc:  # the API restarting: retry on the next pass
            log.warning("pass failed: %s", exc)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
