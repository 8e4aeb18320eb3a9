"""``RenderInputs``: what render needs besides the engine strategy, and what builders derive from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetrove.api.common import Engine, TLSMode
from kubetrove.api.resources import ObjectRef
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import ServerTLS
from kubetrove.render import labels, names
from kubetrove.render.names import ChildNames


@dataclass(frozen=True)
class RenderInputs:
    """Everything render needs besides the engine strategy."""

    owner: ObjectRef  # the DatabaseInstance or DatabaseCluster
    spec: InstanceSpec  # a ClusterSpec gives the replica count; an InstanceSpec is one member
    agent_image: str  # the kubetrove agent image (an operator setting)
    credentials: Mapping[str, str]  # data of the credentials Secret (reconcile generates it when absent)
    agent_token: str  # the bearer token the agent accepts
    image_registry: str = ""  # where the catalog's engine images live (an operator setting); "": as named
    # The operator's namespace: a NetworkPolicy admits agent traffic from it only (None: no policy).
    network_policy_from: str | None = None
    # The agent's TLS material (names.TLS_*_KEY: its certificate, key and the CA), issued by reconcile
    # from the installation's CA; None: the agent serves plain HTTP (agent TLS turned off).
    agent_tls: Mapping[str, str] | None = None
    # The engine's client TLS Secret data (names.TLS_*_KEY and TLS_PEM_KEY), issued or copied by reconcile
    # when spec.tls.mode is not disabled; None otherwise.
    engine_tls: Mapping[str, str] | None = None

    @property
    def is_cluster(self) -> bool:
        """True for a DatabaseCluster: its members are replicated and the clustering loop labels roles."""
        return isinstance(self.spec, ClusterSpec)

    @property
    def replicas(self) -> int:
        """Member count: ``spec.replicas`` for a cluster, 1 for an instance."""
        return self.spec.replicas if isinstance(self.spec, ClusterSpec) else 1

    @property
    def server_tls(self) -> ServerTLS | None:
        """The engine's client TLS settings (files under ``names.ENGINE_TLS_DIR``), or None when off."""
        mode = self.spec.tls_mode
        if mode is TLSMode.DISABLED or self.engine_tls is None:
            return None
        d = names.ENGINE_TLS_DIR
        return ServerTLS(
            mode=mode,
            cert=f"{d}/{names.TLS_CERT_KEY}",
            key=f"{d}/{names.TLS_KEY_KEY}",
            ca=f"{d}/{names.TLS_CA_KEY}",
            pem=f"{d}/{names.TLS_PEM_KEY}",
        )

    @property
    def engine(self) -> Engine:
        return self.spec.datastore.type

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.owner.name)

    def metadata(self, name: str) -> dict[str, Any]:
        """``metadata`` of the child called ``name`` (labels and owner reference from ``labels``)."""
        return labels.metadata(self.owner, self.engine, name)
