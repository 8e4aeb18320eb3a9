"""The StatefulSet: the pod template (engine + agent [+ restore]), claims, placement, update policy.

Decisions:
- ``podManagementPolicy: Parallel`` (as MOCO): the operator and the agents order replication bootstrap
  themselves, so OrderedReady would only serialise start-up and could deadlock (a MongoDB member is not
  ready before the replica set is initiated with the others; a scale-up waits on an unhealthy member).
  The field is immutable, so it never depends on the spec.
- ``updateStrategy: RollingUpdate`` without ``partition``, as rendered. For clusters whose operator picks
  the primary, reconcile replaces it with ``OnDelete`` and deletes outdated pods itself, replicas first
  and the primary last (reconcile/phases/apply.py and rollout.py); no ``partition`` is ever used.
- ``volumeClaimTemplates`` are immutable: a storage change applies to new members only; reconcile grows
  existing PVCs itself.
- The pod template is deterministic (no timestamps, no operator version, ordered lists): an operator
  upgrade alone does not roll pods. Only ``kubetrove.io/config-hash`` tracks restart parameters.
- ``terminationGracePeriodSeconds`` is generous: the kubelet stops waiting as soon as the engine exits,
  so it only costs time when a clean shutdown (buffer pool flush, checkpoint) really needs it.
"""

from __future__ import annotations

from typing import Any

from kubetrove.datastores.base import Datastore, EngineContainer, HAMode
from kubetrove.render import labels, names
from kubetrove.render.agent_sidecar import agent_container, backup_claim, restore_container
from kubetrove.render.configmap import config_hash
from kubetrove.render.engine_container import engine_container, scratch_volume
from kubetrove.render.inputs import RenderInputs
from kubetrove.render.security import pod_security_context

TERMINATION_GRACE_SECONDS = 300
# Secret files: owner root, group fsGroup (the pod's user is in it): readable by our containers only.
SECRET_FILE_MODE = 0o440


def _volumes(inputs: RenderInputs, engine: EngineContainer) -> list[dict[str, Any]]:
    return [
        {"name": names.CONFIG_VOLUME, "configMap": {"name": inputs.names.config_map}},
        {
            "name": names.CREDENTIALS_VOLUME,
            "secret": {"secretName": inputs.names.credentials_secret, "defaultMode": SECRET_FILE_MODE},
        },
        {
            "name": names.AGENT_TOKEN_VOLUME,
            "secret": {"secretName": inputs.names.agent_token_secret, "defaultMode": SECRET_FILE_MODE},
        },
        {"name": names.AGENT_TMP_VOLUME, "emptyDir": {}},
        *(
            [
                {
                    "name": names.AGENT_TLS_VOLUME,
                    "secret": {"secretName": inputs.names.agent_tls_secret, "defaultMode": SECRET_FILE_MODE},
                }
            ]
            if inputs.agent_tls is not None
            else []
        ),
        *(
            [
                {
                    "name": names.ENGINE_TLS_VOLUME,
                    "secret": {"secretName": inputs.names.engine_tls_secret, "defaultMode": SECRET_FILE_MODE},
                }
            ]
            if inputs.server_tls is not None
            else []
        ),
        *({"name": scratch_volume(i), "emptyDir": {}} for i in range(len(engine.scratch_dirs))),
        *([{"name": names.CLONE_VOLUME, "emptyDir": {}}] if engine.clone_dir else []),
        *(
            [
                {
                    "name": names.RESTORE_VOLUME,
                    "secret": {"secretName": inputs.names.restore_secret, "defaultMode": SECRET_FILE_MODE},
                }
            ]
            if inputs.spec.restore_from is not None
            else []
        ),
        *(
            [{"name": names.BACKUP_PVC_VOLUME, "persistentVolumeClaim": {"claimName": claim}}]
            if (claim := backup_claim(inputs.spec)) is not None
            else []
        ),
    ]


def _anti_affinity(inputs: RenderInputs) -> dict[str, Any]:
    # Preferred, not required: a cluster with more members than nodes still starts (a test cluster, a
    # small node pool); the scheduler spreads members over hosts whenever it can.
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": labels.selector_labels(inputs.owner, inputs.engine)},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def pod_template(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The pod template (its own function so tests can compare it alone)."""
    tls = inputs.server_tls
    engine = store.container(inputs.spec.datastore.version, tls)
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # nothing in the pod talks to the API server
        "enableServiceLinks": False,  # no env var per Service in the namespace (slow start, name clashes)
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": pod_security_context(engine),
        "affinity": _anti_affinity(inputs),
    }
    restore = restore_container(inputs, store, engine)
    if restore is not None:
        spec["initContainers"] = [restore]
    spec["containers"] = [engine_container(inputs, store, engine), agent_container(inputs, store, engine)]
    spec["volumes"] = _volumes(inputs, engine)
    return {
        "metadata": {
            "labels": labels.common_labels(inputs.owner, inputs.engine),
            "annotations": {
                names.ANNOTATION_CONFIG_HASH: config_hash(inputs, store),
                # What the operator reads to pick https for this pod's agent (members.agent_tls_name).
                **({names.ANNOTATION_AGENT_TLS: "true"} if inputs.agent_tls is not None else {}),
                **({names.ANNOTATION_TLS_MODE: tls.mode.value} if tls is not None else {}),
            },
        },
        "spec": spec,
    }


def _claim_template(inputs: RenderInputs) -> dict[str, Any]:
    storage = inputs.spec.storage
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name is not None:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": names.DATA_VOLUME,
            "labels": labels.selector_labels(inputs.owner, inputs.engine),
        },
        "spec": spec,
    }


def statefulset(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The ``apps/v1`` StatefulSet running every member."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": inputs.metadata(inputs.names.statefulset),
        "spec": {
            "replicas": inputs.replicas,
            "serviceName": inputs.names.headless_service,
            "selector": {"matchLabels": labels.selector_labels(inputs.owner, inputs.engine)},
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            # Deleting the resource deletes the volumes only when its deletion policy says so; scaling
            # down keeps them, so scaling back up reuses the data instead of a full clone. Except in a
            # ring (no primary): a node leaves it by decommission first (reconcile/phases/ring.py), and a
            # decommissioned node's data can never rejoin (Cassandra refuses to start on it).
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": inputs.spec.deletion_policy.volumes.value,
                "whenScaled": "Delete" if store.ha_mode is HAMode.NO_PRIMARY else "Retain",
            },
            "template": pod_template(inputs, store),
            "volumeClaimTemplates": [_claim_template(inputs)],
        },
    }
