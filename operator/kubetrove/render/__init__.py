"""Pure rendering: a parsed spec + the engine's ``Datastore`` strategy -> Kubernetes manifest dicts.

No I/O, no clock, no randomness, no kopf or Kubernetes client: generated values (passwords, the agent
token) come in through ``RenderInputs``, so the same inputs always give the same manifests, and the pod
template in particular is byte-identical across operator restarts and upgrades (a change there rolls
pods); only a new ``agent_image`` setting rolls them, as it should.

Public API (kept stable; reconcile codes against it): ``RenderInputs``, ``Manifests``, ``render``;
child names in ``render.names``; labels and owner references in ``render.labels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetrove.datastores.base import Datastore
from kubetrove.render import configmap, networkpolicy, pdb, secrets, services, statefulset
from kubetrove.render.inputs import RenderInputs

__all__ = ["Manifests", "RenderInputs", "render"]


@dataclass(frozen=True)
class Manifests:
    """The desired children of one resource."""

    credentials_secret: dict[str, Any]
    agent_token_secret: dict[str, Any]
    config_map: dict[str, Any]
    headless_service: dict[str, Any]
    rw_service: dict[str, Any]
    ro_service: dict[str, Any]
    statefulset: dict[str, Any]
    pdb: dict[str, Any] | None  # None: no PodDisruptionBudget (a single member), delete one if present
    network_policy: dict[str, Any] | None = None  # None: NetworkPolicies off, delete one if present
    agent_tls_secret: dict[str, Any] | None = None  # None: agent TLS off (a Secret left from before stays:
    # a pod of the old template may still restart and mount it)
    engine_tls_secret: dict[str, Any] | None = None  # None: spec.tls disabled (one left stays, likewise)

    def all(self) -> list[dict[str, Any]]:
        """Every manifest in apply order: what pods mount and select first, the StatefulSet last."""
        ordered = [
            self.credentials_secret,
            self.agent_token_secret,
            self.agent_tls_secret,  # before the pods: they mount it
            self.engine_tls_secret,
            self.config_map,
            self.headless_service,
            self.rw_service,
            self.ro_service,
            self.pdb,
            self.network_policy,  # before the pods: they start isolated, never open
            self.statefulset,
        ]
        return [m for m in ordered if m is not None]


def render(inputs: RenderInputs, store: Datastore) -> Manifests:
    """Render every child of ``inputs.owner`` for the engine ``store`` (the spec must be validated)."""
    return Manifests(
        credentials_secret=secrets.credentials_secret(inputs),
        agent_token_secret=secrets.agent_token_secret(inputs),
        config_map=configmap.config_map(inputs, store),
        headless_service=services.headless_service(inputs, store),
        rw_service=services.rw_service(inputs, store),
        ro_service=services.ro_service(inputs, store),
        statefulset=statefulset.statefulset(inputs, store),
        pdb=pdb.pdb(inputs, store),
        network_policy=networkpolicy.network_policy(inputs, store),
        agent_tls_secret=secrets.agent_tls_secret(inputs),
        engine_tls_secret=secrets.engine_tls_secret(inputs),
    )
