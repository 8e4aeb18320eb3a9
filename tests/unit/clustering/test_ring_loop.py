"""The observe-only loop of a ring (Cassandra): it reports every node truthfully and does nothing else."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from kubetrove.agent.protocol import Role, Status
from kubetrove.api.common import Engine
from kubetrove.api.resources import CLUSTER, ObjectRef
from kubetrove.clustering import runner
from kubetrove.clustering.ops import MemberUnreachable
from kubetrove.clustering.ring_process import RingLoop, ring_state
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores import registry
from kubetrove.render.names import AGENT_TOKEN_KEY, ChildNames
from tests.unit.clustering.fake import FakeRecord
from tests.unit.reconcile.fake_kube import FakeKube

PODS = ["ring-0", "ring-1", "ring-2"]


def node(healthy: bool = True) -> Status:
    return Status(engine="cassandra", version="5.0.9", role=Role.MEMBER, read_only=False, healthy=healthy)


@dataclass
class FakeRing:
    """Answers ``/v1/status`` only: a ring loop has no other call to make."""

    statuses: dict[str, Status | None]
    calls: list[str] = field(default_factory=list)

    async def status(self, pod: str) -> Status:
        self.calls.append(pod)
        found = self.statuses[pod]
        if found is None:
            raise MemberUnreachable(pod)
        return found


def test_ring_state_names_every_node_that_is_not_serving() -> None:
    assert ring_state(PODS, dict.fromkeys(PODS, node())) == ("Healthy", ())
    statuses = {"ring-0": node(), "ring-1": None, "ring-2": node(healthy=False)}
    assert ring_state(PODS, statuses) == (
        "Degraded",
        ("ring-1 is unreachable", "ring-2 has not joined the ring yet (bootstrap not completed)"),
    )


async def test_a_cycle_reports_members_and_never_names_a_primary() -> None:
    record = FakeRecord(PODS, ClusterView((), None))
    ring = FakeRing({"ring-0": node(), "ring-1": node(), "ring-2": None})
    assert await RingLoop(ring, record).cycle() == "Degraded"
    assert record.state == "Degraded" and record.primary is None and record.labels == {}
    assert sorted(ring.calls) == PODS
    ring.statuses["ring-2"] = node()
    assert await RingLoop(ring, record).cycle() == "Healthy"
    assert record.state == "Healthy" and record.events == []


def _secret(name: str, data: dict[str, str]) -> dict[str, object]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns"},
        "data": encoded,
    }


@pytest.mark.parametrize(("engine", "version"), [(Engine.CASSANDRA, "5.0"), (Engine.MARIADB, "11.4")])
async def test_the_loop_starts_once_the_secrets_it_needs_exist(engine: Engine, version: str) -> None:
    kube = FakeKube()
    ref = ObjectRef(namespace="ns", name="db", uid="uid-db", generation=1, kind=CLUSTER)
    store = registry.get(engine)
    wiring = runner.Wiring(kube, ref, store, version, lambda *_: "", lambda *_: "")
    assert await runner.credentials(wiring) is None  # no agent token yet
    names = ChildNames("db")
    kube.put(_secret(names.agent_token_secret, {AGENT_TOKEN_KEY: "t0ken"}))
    admin_key = store.container(version).admin_password_key
    # A ring's agent logs in without a password: the token alone starts its (observe-only) loop.
    assert (await runner.credentials(wiring) is None) == bool(admin_key)
    kube.put(_secret(names.credentials_secret, {admin_key: "pw"} if admin_key else {}))
    found = await runner.credentials(wiring)
    assert found is not None and found[0] == "t0ken"
