"""Every child object's name, label key and well-known annotation key, in ONE place.

Invariants (other packages rely on them; changing one renames live objects):
- a child's name is derived from the owner's name only, so reconcile, clustering and e2e tests can
  find every child without reading a status field;
- pods are ``<name>-<ordinal>`` (the StatefulSet controller's rule), reachable as
  ``<pod>.<name>-headless.<namespace>.svc`` through the headless Service;
- the selector labels (``SELECTOR_KEYS``) are immutable in a StatefulSet: never add a key to them.
"""

from __future__ import annotations

import hashlib
import re
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
# Pod template annotation: "true" when the pod's agent serves TLS (members.agent_tls_name reads it).
ANNOTATION_AGENT_TLS = "kubetrove.io/agent-tls"
# Pod template annotation: spec.tls.mode when not disabled. Engines read their TLS settings at start (or,
# for PostgreSQL's pg_hba.conf, the start script writes them), so a change of mode rolls the pods.
ANNOTATION_TLS_MODE = "kubetrove.io/tls-mode"

# Containers and volumes of the database pod.
ENGINE_CONTAINER = "engine"
AGENT_CONTAINER = "agent"
RESTORE_CONTAINER = "restore"
DATA_VOLUME = "data"
CONFIG_VOLUME = "config"
CREDENTIALS_VOLUME = "credentials"
AGENT_TOKEN_VOLUME = "agent-token"  # noqa: S105 (a volume name)
AGENT_TMP_VOLUME = "agent-tmp"
AGENT_TLS_VOLUME = "agent-tls"
ENGINE_TLS_VOLUME = "engine-tls"
# Where the engine container mounts its client TLS Secret (read-only; the kubelet swaps renewed files).
ENGINE_TLS_DIR = "/etc/kubetrove/tls"
RESTORE_VOLUME = "restore-request"
SCRATCH_VOLUME_PREFIX = "scratch-"
BACKUP_PVC_VOLUME = "backup-pvc"
CLONE_VOLUME = "clone"  # EngineContainer.clone_dir: written by the engine, read by the agent
# Where the PVC of a ``pvc`` backup target is mounted in the agent (and restore) containers:
# ``<root>/<claimName>``, the directory the agent writes backups to.
BACKUP_PVC_ROOT = "/var/lib/kubetrove/backups"

# Key of the agent token inside the agent token Secret.
AGENT_TOKEN_KEY = "token"  # noqa: S105 (a key name)
# Keys of the agent TLS Secret (the kubernetes.io/tls layout, plus the CA that signed it).
TLS_CERT_KEY, TLS_KEY_KEY, TLS_CA_KEY = "tls.crt", "tls.key", "ca.crt"
# The engine TLS Secret's extra key: certificate and key in one PEM (MongoDB's certificateKeyFile).
TLS_PEM_KEY = "tls.pem"
# Key of the RestoreRequest JSON inside the restore Secret (it holds storage credentials, hence a Secret).
RESTORE_REQUEST_KEY = "request.json"
# Key of a generated user password (the default key of ``User.passwordSecretRef`` too).
USER_PASSWORD_KEY = "password"  # noqa: S105 (a key name)


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
    def agent_tls_secret(self) -> str:
        return f"{self.name}-agent-tls"

    @property
    def engine_tls_secret(self) -> str:
        """The engine's client TLS certificate (spec.tls), issued or copied from spec.tls.secretName."""
        return f"{self.name}-tls"

    @property
    def restore_secret(self) -> str:
        return f"{self.name}-restore"

    @property
    def config_map(self) -> str:
        return f"{self.name}-config"

    @property
    def pdb(self) -> str:
        return f"{self.name}-pdb"

    @property
    def network_policy(self) -> str:
        return f"{self.name}-net"

    def user_secret(self, user: str) -> str:
        """The Secret holding the generated password of database user ``user``.

        User names allow ``_`` and upper case, Secret names do not: the name is lower-cased with ``_``
        as ``-``, and any name that changed on the way gets a short hash of the original, so two users
        never share a Secret (``Bob`` and ``bob``; ``a_b`` and ``a-b`` cannot both be users).
        """
        slug = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")
        if slug != user:
            slug = f"{slug}-{hashlib.sha256(user.encode()).hexdigest()[:8]}".lstrip("-")
        return f"{self.name}-user-{slug}"

    def pod(self, ordinal: int) -> str:
        """The pod of member ``ordinal`` (0-based)."""
        return f"{self.name}-{ordinal}"

    def pod_host(self, ordinal: int, namespace: str) -> str:
        """The stable DNS name of member ``ordinal`` through the headless Service."""
        return self.member_host(self.pod(ordinal), namespace)

    def member_host(self, pod: str, namespace: str) -> str:
        """The stable DNS name of member pod ``pod`` through the headless Service."""
        return f"{pod}.{self.headless_service}.{namespace}.svc"

    def data_claim(self, ordinal: int) -> str:
        """The PVC the StatefulSet controller creates for member ``ordinal``: ``<template>-<pod>``."""
        return f"{DATA_VOLUME}-{self.pod(ordinal)}"
