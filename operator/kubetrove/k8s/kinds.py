"""The resource types kubetrove reads or writes, and their REST paths.

A static table instead of API discovery: the operator touches a small, known set of kinds, so a
lookup is a dict access (no discovery round-trip at start-up, no cache to go stale), and an
unknown kind is a programming error that fails loudly in unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetrove.api.common import API_VERSION
from kubetrove.api.resources import KINDS


@dataclass(frozen=True)
class ResourceType:
    """One kind: its apiVersion, plural (the REST path segment) and whether it lives in a namespace."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path of the collection, or of one object (and its subresource)."""
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            if namespace is None:
                if name is not None:
                    raise ValueError(f"{self.kind} {name}: a namespaced object needs a namespace")
                return f"{base}/{self.plural}"  # list across all namespaces
            base = f"{base}/namespaces/{namespace}"
        path = f"{base}/{self.plural}"
        if name is not None:
            path = f"{path}/{name}"
            if subresource:
                path = f"{path}/{subresource}"
        return path


SECRET = ResourceType("v1", "Secret", "secrets")
CONFIG_MAP = ResourceType("v1", "ConfigMap", "configmaps")
SERVICE = ResourceType("v1", "Service", "services")
SERVICE_ACCOUNT = ResourceType("v1", "ServiceAccount", "serviceaccounts")
POD = ResourceType("v1", "Pod", "pods")
PVC = ResourceType("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
NAMESPACE = ResourceType("v1", "Namespace", "namespaces", namespaced=False)
STATEFULSET = ResourceType("apps/v1", "StatefulSet", "statefulsets")
PDB = ResourceType("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
STORAGE_CLASS = ResourceType("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False)
NETWORK_POLICY = ResourceType("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
JOB = ResourceType("batch/v1", "Job", "jobs")
CRONJOB = ResourceType("batch/v1", "CronJob", "cronjobs")
LEASE = ResourceType("coordination.k8s.io/v1", "Lease", "leases")
EVENT = ResourceType("events.k8s.io/v1", "Event", "events")
VALIDATING_WEBHOOK = ResourceType(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
MUTATING_WEBHOOK = ResourceType(
    "admissionregistration.k8s.io/v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
    namespaced=False,
)
SELF_SUBJECT_REVIEW = ResourceType(
    "authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False
)
CRD = ResourceType(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)
# "May I?": asked by the user's tools (kubetrove.cli, kubetrove.console); answered for the caller.
SELF_SUBJECT_ACCESS_REVIEW = ResourceType(
    "authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False
)
CUSTOM = {k.kind: ResourceType(API_VERSION, k.kind, k.plural, k.namespaced) for k in KINDS}

_ALL: tuple[ResourceType, ...] = (
    SECRET,
    CONFIG_MAP,
    SERVICE,
    SERVICE_ACCOUNT,
    POD,
    PVC,
    NAMESPACE,
    STATEFULSET,
    PDB,
)
_ALL += (STORAGE_CLASS, NETWORK_POLICY, JOB, CRONJOB, LEASE, EVENT, CRD, VALIDATING_WEBHOOK, MUTATING_WEBHOOK)
_ALL += (SELF_SUBJECT_REVIEW, SELF_SUBJECT_ACCESS_REVIEW)
_ALL += tuple(CUSTOM.values())
BY_KIND: dict[tuple[str, str], ResourceType] = {(t.api_version, t.kind): t for t in _ALL}


def of(manifest: dict[str, Any]) -> ResourceType:
    """The type of a manifest, from its apiVersion and kind (KeyError names an unknown kind)."""
    key = (manifest["apiVersion"], manifest["kind"])
    try:
        return BY_KIND[key]
    except KeyError:
        raise KeyError(f"kubetrove.k8s.kinds has no entry for {key[0]} {key[1]}") from None
