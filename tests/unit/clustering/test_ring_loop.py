"""The observe-only loop of a ring (Cassandra): it reports every node truthfully and does nothing else."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from kubetrove.agent.protocol import RingNode, Role, Status
from kubetrove.api.common import Engine
from kubetrove.api.resources import CLUSTER, ObjectRef
from kubetrove.clustering import runner
from kubetrove.clustering.ops import MemberUnreachable
from kubetrove.clustering.ring_process import RingLoop, ring_members, ring_state
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores import registry
from kubetrove.render.names import AGENT_TOKEN_KEY, ChildNames
from tests.unit.clustering.fake import FakeRecord
from tests.unit.reconcile.fake_kube import FakeKube

PODS = ["ring-0", "ring-1", "ring-2"]


HOST = {"ring-0": "h0", "ring-1": "h1", "ring-2": "h2"}


def node(healthy: bool = True, host_id: str | None = None, ring: list[RingNode] | None = None) -> Status:
    return Status(
        engine="cassandra",
        version="5.0.9",
        role=Role.MEMBER,
        read_only=False,
        healthy=healthy,
        host_id=host_id,
        ring=ring,
    )


def seen(**states: str) -> list[RingNode]:
    """A node's view of the ring: {"h0": "UN", ...} (address 10.0.0.<i>, 16 tokens)."""
    return [
        RingNode(address=f"10.0.0.{i}", host_id=hid, state=st, load=f"{i}.0 MiB", tokens=16)
        for i, (hid, st) in enumerate(sorted(states.items()))
    ]


def ring_node(pod: str, views: dict[str, str]) -> Status:
    return node(host_id=HOST[pod], ring=seen(**views))


@dataclass
class FakeRing:
    """Answers ``/v1/status`` only: a ring loop has no other call to make."""

    statuses: dict[str, Status | None]
    calls: list[str] = field(default_factory=list)

    async def volume(self, pod: str) -> None:
        raise MemberUnreachable(pod)

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


@pytest.mark.parametrize(("engine", "version"), [(Engine.CASSANDRA, "5.0"), (Engine.MARIADB, "11.8")])
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


def test_a_member_is_what_its_peers_see_and_its_own_numbers() -> None:
    all_up = {"h0": "UN", "h1": "UN", "h2": "UN"}
    host_ids: dict[str, str] = {}
    statuses = {pod: ring_node(pod, all_up) for pod in PODS}
    members, strangers = ring_members(PODS, statuses, host_ids)
    assert host_ids == HOST and strangers == []
    assert {p: (n.state, n.host_id, n.tokens, n.load) for p, n in members.items()} == {
        "ring-0": ("UN", "h0", 16, "0.0 MiB"),
        "ring-1": ("UN", "h1", 16, "1.0 MiB"),
        "ring-2": ("UN", "h2", 16, "2.0 MiB"),
    }
    assert ring_state(PODS, statuses, members) == ("Healthy", ())

    # ring-1 killed: its agent is gone; both peers see it DN. It is found by the host id it reported.
    one_down = {"h0": "UN", "h1": "DN", "h2": "UN"}
    statuses = {
        "ring-0": ring_node("ring-0", one_down),
        "ring-1": None,
        "ring-2": ring_node("ring-2", one_down),
    }
    members, _ = ring_members(PODS, statuses, host_ids)
    assert members["ring-1"].state == "DN" and members["ring-1"].host_id == "h1"
    assert ring_state(PODS, statuses, members) == ("Degraded", ("ring-1 is DN (down, normal) in the ring",))


def test_a_node_sees_itself_up_so_its_peers_decide() -> None:
    host_ids: dict[str, str] = {}
    statuses = {
        "ring-0": ring_node("ring-0", {"h0": "UN", "h1": "UN", "h2": "DN"}),
        "ring-1": ring_node("ring-1", {"h0": "UN", "h1": "UN", "h2": "DN"}),
        "ring-2": ring_node("ring-2", {"h0": "DN", "h1": "DN", "h2": "UN"}),  # cut off from the others
    }
    members, _ = ring_members(PODS, statuses, host_ids)
    assert {p: n.state for p, n in members.items()} == {"ring-0": "UN", "ring-1": "UN", "ring-2": "DN"}


def test_after_a_restart_the_one_down_pod_is_the_one_unclaimed_node_and_others_are_named() -> None:
    down = {"h0": "UN", "h1": "DN", "h2": "UN"}
    statuses = {"ring-0": ring_node("ring-0", down), "ring-1": None, "ring-2": ring_node("ring-2", down)}
    members, strangers = ring_members(PODS, statuses, {})
    assert members["ring-1"].host_id == "h1" and strangers == []

    # Two pods, three nodes in the ring: the third is a node no pod claims (say, one replaced by hand).
    extra = {"h0": "UN", "h1": "UN", "h9": "DN"}
    two = PODS[:2]
    statuses = {"ring-0": ring_node("ring-0", extra), "ring-1": ring_node("ring-1", extra)}
    members, strangers = ring_members(two, statuses, {})
    assert [n.host_id for n in strangers] == ["h9"]
    assert ring_state(two, statuses, members, strangers) == (
        "Degraded",
        ("node 10.0.0.2 (host id h9, DN (down, normal)) is in the ring but is no member",),
    )


async def test_the_loop_writes_each_members_ring_view() -> None:
    record = FakeRecord(PODS, ClusterView((), None))
    one_down = {"h0": "UN", "h1": "DN", "h2": "UN"}
    ring = FakeRing({pod: ring_node(pod, dict.fromkeys(HOST.values(), "UN")) for pod in PODS})
    loop = RingLoop(ring, record)
    assert await loop.cycle() == "Healthy"
    ring.statuses = {
        "ring-0": ring_node("ring-0", one_down),
        "ring-1": None,
        "ring-2": ring_node("ring-2", one_down),
    }
    assert await loop.cycle() == "Degraded"
    assert record.ring["ring-1"].state == "DN" and record.members["ring-1"] is None


def test_a_members_ring_view_is_written_in_its_status_entry() -> None:
    from kubetrove.observation import member_status

    down = RingNode(address="10.0.0.2", host_id="h1", state="DN", load="1.5 MiB", tokens=16)
    assert member_status("ring-1", None, down) == {
        "pod": "ring-1",
        "role": "unknown",
        "healthy": False,
        "ringState": "DN",
        "hostId": "h1",
        "address": "10.0.0.2",
        "tokens": 16,
        "load": "1.5 MiB",
    }
    up = member_status("ring-0", node(host_id="h0"), down.model_copy(update={"state": "UN", "host_id": "h0"}))
    assert (up["role"], up["healthy"], up["ringState"], up["hostId"]) == ("member", True, "UN", "h0")
