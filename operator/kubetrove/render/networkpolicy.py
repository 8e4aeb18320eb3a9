"""The NetworkPolicy of one database (operator setting KUBETROVE_NETWORK_POLICY; off by default).

What it admits, to the database's pods (every other ingress is refused once a policy selects them):
- the agent port (bearer token; plain HTTP until agent TLS exists) only from pods of the operator's
  namespace (``RenderInputs.network_policy_from``): user passwords and the token cross it;
- the engine ports (client port, and Cassandra's intra-node port) only from pods of the database's
  own namespace: its members replicate to each other there, and clients in the same namespace connect.

Clients in other namespaces: add a NetworkPolicy of your own selecting the same pods (policies add up,
https://kubernetes.io/docs/concepts/services-networking/network-policies/). Egress is not restricted.
Enforcement is the CNI's: a CNI without NetworkPolicy support (flannel, the plain bridge plugin) ignores
it. Probes from the kubelet come from the node, which most policy-enforcing CNIs always admit.
"""

from __future__ import annotations

from typing import Any

from kubetrove.agent.protocol import PORT as AGENT_PORT
from kubetrove.datastores.base import Datastore
from kubetrove.render import labels
from kubetrove.render.inputs import RenderInputs

NAMESPACE_NAME = "kubernetes.io/metadata.name"  # set by the apiserver on every namespace (1.22+)


def network_policy(inputs: RenderInputs, store: Datastore) -> dict[str, Any] | None:
    """``networking.k8s.io/v1`` NetworkPolicy for the database's pods, or None when the setting is off."""
    if inputs.network_policy_from is None:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": inputs.metadata(inputs.names.network_policy),
        "spec": {
            "podSelector": {"matchLabels": labels.selector_labels(inputs.owner, store.engine)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {NAMESPACE_NAME: inputs.network_policy_from}
                            },
                            "podSelector": {},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": AGENT_PORT}],
                },
                {
                    "from": [{"podSelector": {}}],  # any pod of the database's own namespace
                    "ports": [{"protocol": "TCP", "port": p.number} for p in store.ports],
                },
            ],
        },
    }
