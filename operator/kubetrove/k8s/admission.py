"""API calls of the admission webhook: who the operator is, and the caBundle of its configurations."""

from __future__ import annotations

import base64

from kubetrove.k8s.kinds import SELF_SUBJECT_REVIEW, ResourceType
from kubetrove.k8s.port import Kube


async def whoami(kube: Kube) -> str:
    """The operator's own user name as the API server sees it (SelfSubjectReview, GA in 1.28; every
    authenticated user may create one through the default system:basic-user role)."""
    reply = await kube.create(
        {"apiVersion": SELF_SUBJECT_REVIEW.api_version, "kind": SELF_SUBJECT_REVIEW.kind, "metadata": {}}
    )
    return str(((reply.get("status") or {}).get("userInfo") or {}).get("username", ""))


async def set_ca_bundle(kube: Kube, rtype: ResourceType, name: str, ca_pem: bytes) -> bool:
    """Put ``ca_pem`` in every webhook of the configuration ``name``; False when it does not exist.

    PUT with the resourceVersion read (a merge patch would replace the whole ``webhooks`` list): a
    concurrent change (a ``helm upgrade``) makes it raise Conflict and the caller retries.
    """
    config = await kube.get(rtype, None, name)
    if config is None:
        return False
    bundle = base64.b64encode(ca_pem).decode()
    for hook in config.get("webhooks") or []:
        hook.setdefault("clientConfig", {})["caBundle"] = bundle
    await kube.replace(config)
    return True
