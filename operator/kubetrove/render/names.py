"""Every child object's name, label key and well-known annotation key, in ONE place.

Invariants (other packages rely on them; changing one renames live objects):
- a child's name is derived from the owner's name only, so reconcile, clustering and e2e tests can
  find every child without reading a status field;
- pods are ``<name>-<ordinal>`` (the StatefulSet controller's rule), reachable as
  ``<pod>.<name>-headless.<namespace>.svc`` through the headless Service;
- the selector labels (``SELECTOR_KEYS``) are immutable in a StatefulSet: never add a key to them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Labels: the Kubernetes recommended ones (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/)
# plus our own. app.kubernetes.io/name is the application (the engine, as MOCO does with "mysql").
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_ENGINE = "kubetrove.io/engine"
# Set on pods by the clustering loop (never rendered into the pod template): the rw/ro Services follow it.
LABEL_ROLE = "kubetrove.io/role"

MANAGED_BY = "kubetrove"
COMPONENT = "database"
ROLE_PRIMARY = "primary"
ROLE_REPLICA = "replica"

# The StatefulSet selector; immutable once the StatefulSet exists.
SELECTOR_KEYS = (LABEL_NAME, LABEL_INSTANCE, LABEL_MANAGED_BY)

# Pod template annotation: hash of the restart-requiring parameters (render/configmap.py).
ANNOTATION_CONFIG_HASH = "kubetrove.io/config-hash"

# Containers and volumes of the database pod.
ENGINE_CONTAINER = "engine"
AGENT_CONTAINER = "agent"
RESTORE_CONTAINER = "restore"
DATA_VOLUME = "data"
CONFIG_VOLUME = "config"
CREDENTIALS_VOLUME = "credentials"
AGENT_TOKEN_VOLUME = "agent-token"  # noqa: S105 (a volume name)
AGENT_TMP_VOLUME = "agent-tmp"
SCRATCH_VOLUME_PREFIX = "scratch-"

# Key of the agent token inside the agent token Secret.
AGENT_TOKEN_KEY = "token"  # noqa: S105 (a key name)


@dataclass(frozen=True)
class ChildNames:
    """Names of the children of the custom resource called ``name``."""

    name: str

    @property
    def statefulset(self) -> str:
        """The StatefulSet has the resource's own name, so pods are ``<name>-<i>``."""
        return self.name

    @property
    def headless_service(self) -> str:
        return f"{self.name}-headless"

    @property
    def rw_service(self) -> str:
        return f"{self.name}-rw"

    @property
    def ro_service(self) -> str:
        return f"{self.name}-ro"

    @property
    def credentials_secret(self) -> str:
        return f"{self.name}-credentials"

    @property
    def agent_token_secret(self) -> str:
        return f"{self.name}-agent-token"

    @property
    def config_map(self) -> str:
        return f"{self.name}-config"

    @property
    def pdb(self) -> str:
        return f"{self.name}-pdb"

    def pod(self, ordinal: int) -> str:
        """The pod of member ``ordinal`` (0-based)."""
        return f"{self.name}-{ordinal}"

    def pod_host(self, ordinal: int, namespace: str) -> str:
        """The stable DNS name of member ``ordinal`` through the headless Service."""
        return f"{self.pod(ordinal)}.{self.headless_service}.{namespace}.svc"

    def data_claim(self, ordinal: int) -> str:
        """The PVC the StatefulSet controller creates for member ``ordinal``: ``<template>-<pod>``."""
        return f"{DATA_VOLUME}-{self.pod(ordinal)}"
