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
Run: python provisioner.py --kubeconfig K --volumes DIR --node N --storage-class C --provisioner P
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
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
        path.mkdir(parents=True, exist_ok=True)
        try:
            core.create_persistent_volume(pv_manifest(pvc, args, path))
            log.info("provisioned pvc-%s for %s/%s at %s", meta.uid, meta.namespace, meta.name, path)
        except ApiException as exc:
            if exc.status != 409:  # 409: made on an earlier pass, KCM has not bound it yet
                raise


def reclaim(core: client.CoreV1Api, args: argparse.Namespace) -> None:
    """Delete the directory, then the PV, of every Released volume we provisioned."""
    for pv in core.list_persistent_volume().items:
        ours = (pv.metadata.annotations or {}).get(PROVISIONED_BY) == args.provisioner
        if not ours or pv.status.phase != "Released" or pv.spec.persistent_volume_reclaim_policy != "Delete":
            continue
        path = Path(pv.spec.local.path)
        if path.parent == Path(args.volumes):  # never outside our directory, whatever the PV says
            shutil.rmtree(path, ignore_errors=True)
        try:
            core.delete_persistent_volume(pv.metadata.name)
            log.info("deleted %s and %s", pv.metadata.name, path)
        except ApiException as exc:
            if exc.status != 404:
                raise


def main() -> None:
    """Poll forever (the harness stops this process by PID)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--kubeconfig", "--volumes", "--node", "--storage-class", "--provisioner"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    core = client.CoreV1Api(config.new_client_from_config(config_file=args.kubeconfig))
    log.info("watching class %s for node %s; volumes in %s", args.storage_class, args.node, args.volumes)
    while True:
        try:
            provision(core, args)
            reclaim(core, args)
        except (ApiException, OSError) as exc:  # the API restarting: retry on the next pass
            log.warning("pass failed: %s", exc)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
