"""The three Services: headless (member DNS), read-write and read-only.

Which pods rw and ro select depends on who decides the primary (``store.ha_mode``):

- OPERATOR_PRIMARY (MySQL, MariaDB, PostgreSQL) and ENGINE_ELECTED (MongoDB) in a DatabaseCluster: the
  clustering loop labels pods ``kubetrove.io/role=primary|replica`` after it has written
  ``status.primary``; rw selects the primary, ro the replicas. For MongoDB the replica set elects and
  the membership loop only follows it: it labels the one member that reports itself primary
  (clustering/membership.py, M1), a second or so after the election. A driver connecting with
  ``replicaSet=`` discovers the primary itself and does not need this, but one that connects to a
  single address (a ClusterIP, ``directConnection``, a client outside the cluster that cannot resolve the
  members' DNS names) reaches a member that takes writes only if rw follows the primary. The selector
  does not depend on the replica count, so scaling never edits it (a one-member cluster has an empty ro
  Service until it grows).
- NO_PRIMARY (Cassandra): every node takes writes; both select every ready member.
- A DatabaseInstance has no clustering loop (nobody sets a role label): both select its one pod.

rw and ro route to ready pods only; the headless Service publishes not-ready pods too, because
members must resolve each other while they bootstrap replication, before they are ready.
"""

from __future__ import annotations

from typing import Any

from kubetrove.agent.protocol import PORT as AGENT_PORT
from kubetrove.datastores.base import Datastore, HAMode
from kubetrove.render import labels, names
from kubetrove.render.inputs import RenderInputs


def _port(name: str, number: int) -> dict[str, Any]:
    return {"name": name, "port": number, "targetPort": name, "protocol": "TCP"}


def _service(inputs: RenderInputs, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": inputs.metadata(name), "spec": spec}


def _follows_roles(inputs: RenderInputs, store: Datastore) -> bool:
    """True when pods carry role labels that rw/ro must follow (see the module docstring)."""
    return inputs.is_cluster and store.ha_mode in (HAMode.OPERATOR_PRIMARY, HAMode.ENGINE_ELECTED)


def _client_service(inputs: RenderInputs, store: Datastore, name: str, role: str) -> dict[str, Any]:
    selector = (
        labels.role_selector(inputs.owner, store.engine, role)
        if _follows_roles(inputs, store)
        else labels.selector_labels(inputs.owner, store.engine)
    )
    client = store.ports[0]
    return _service(
        inputs,
        name,
        {"type": "ClusterIP", "selector": selector, "ports": [_port(client.name, client.number)]},
    )


def headless_service(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The StatefulSet's governing Service: ``<pod>.<name>-headless`` DNS for every member."""
    ports = [_port(p.name, p.number) for p in store.ports] + [_port(names.AGENT_CONTAINER, AGENT_PORT)]
    return _service(
        inputs,
        inputs.names.headless_service,
        {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": labels.selector_labels(inputs.owner, store.engine),
            "ports": ports,
        },
    )


def rw_service(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The read-write endpoint: the primary where the operator picks one, else every member."""
    return _client_service(inputs, store, inputs.names.rw_service, names.ROLE_PRIMARY)


def ro_service(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The read-only endpoint: the replicas where the operator picks a primary, else every member."""
    return _client_service(inputs, store, inputs.names.ro_service, names.ROLE_REPLICA)
