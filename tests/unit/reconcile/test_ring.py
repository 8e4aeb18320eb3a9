"""A ring's node changes by the operator (reconcile/phases/ring.py): decommission before a shrink, refused
with a condition naming the keyspace; replace_address_first_boot in the ConfigMap for a member seen down."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from kubetrove.agent.protocol import RingNode, Role, Status, base_url
from kubetrove.api.resources import parse_body
from kubetrove.api.specs import ClusterSpec
from kubetrove.k8s.kinds import CONFIG_MAP, CUSTOM, EVENT, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.report import parse_status
from kubetrove.reconcile.phases.ring import replacement_patch, wanted_replacements
from kubetrove.reconcile.phases.users import APPLIED_USERS
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.conftest import CLUSTER, LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube
from tests.unit.reconcile.test_users import seed_members

CASSANDRA = {"type": "cassandra", "version": "5.0"}


def url(i: int) -> str:
    return base_url(f"10.0.0.{i + 1}")


def node_status(host_id: str, ring: list[str]) -> Status:
    view = [RingNode(address=f"10.0.0.{h[1:]}", host_id=h, state="UN", tokens=16) for h in ring]
    return Status(engine="cassandra", version="5.0.9", role=Role.MEMBER, read_only=False, healthy=True,
                  host_id=host_id, ring=view)  # fmt: skip


async def a_ring_of_three(kube: FakeKube, deps: Deps, agents: FakeAgents) -> None:
    kube.put(body(CLUSTER, replicas=3, datastore=CASSANDRA))
    with contextlib.suppress(NotReady):
        await run.reconcile(parsed(CLUSTER, replicas=3, datastore=CASSANDRA), None, deps, LOG)
    seed_members(kube, 3, "cassandra")
    with contextlib.suppress(NotReady):
        await run.reconcile(parsed(CLUSTER, replicas=3, datastore=CASSANDRA), None, deps, LOG)
    for i in range(3):
        agents.statuses[url(i)] = node_status(f"h{i}", ["h0", "h1", "h2"])
    agents.calls.clear()


def replicas(kube: FakeKube) -> int:
    return int(kube.find(STATEFULSET, "ns", "db")["spec"]["replicas"])


def scale_down(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.find(CUSTOM["DatabaseCluster"], "ns", "db").get("status") or {})


async def test_a_shrinking_ring_decommissions_the_leaving_node_before_the_statefulset_shrinks(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await a_ring_of_three(kube, deps, agents)
    with contextlib.suppress(NotReady):  # users may wait; the shrink is what matters
        await run.reconcile(parsed(CLUSTER, 2, replicas=2, datastore=CASSANDRA), None, deps, LOG)
    # The system keyspaces first fit two nodes (through member 0), then member 2 leaves, then the shrink.
    calls = ("leave_check", "ensure_ring_replication", "decommission")
    assert [(u, m, a) for u, m, a in agents.calls if m in calls] == [
        (url(0), "leave_check", (2, [])),
        (url(0), "ensure_ring_replication", 2),
        (url(2), "decommission", url(2)),
    ]
    assert replicas(kube) == 2
    assert (
        json.loads(kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_USERS])["ring"] == 2
    )
    conds = {c["type"]: c for c in scale_down(kube)["conditions"]}
    assert (conds["ScaleDown"]["status"], conds["ScaleDown"]["reason"]) == ("True", "Decommissioned")
    assert "db-2 left the ring" in conds["ScaleDown"]["message"]
    # A node the ring no longer holds (decommissioned before an operator restart) is not asked again.
    kube.find(STATEFULSET, "ns", "db")["spec"]["replicas"] = 3
    agents.statuses[url(0)] = node_status("h0", ["h0", "h1"])
    agents.calls.clear()
    with contextlib.suppress(NotReady):
        await run.reconcile(parsed(CLUSTER, 2, replicas=2, datastore=CASSANDRA), None, deps, LOG)
    assert agents.of("decommission") == [] and replicas(kube) == 2


SAID = (
    "decommission refused: 2 nodes would be left, fewer than the replication factor of app"
    " (replication factor 3)"
)
SMALLER = {"replicas": 2, "datastore": CASSANDRA}


def asked(kube: FakeKube, generation: int, **spec: Any) -> None:
    """The resource as the API server now holds it (its status kept), at ``generation``."""
    stored = kube.find(CUSTOM["DatabaseCluster"], "ns", "db")
    kube.put({**body(CLUSTER, generation, **spec), "status": stored.get("status") or {}})


def scale_down_condition(kube: FakeKube) -> dict[str, Any]:
    (cond,) = [c for c in scale_down(kube)["conditions"] if c["type"] == "ScaleDown"]
    return dict(cond)


def refused_events(kube: FakeKube) -> list[str]:
    events = [e for (_, kind, _, _), e in kube.objects.items() if kind == EVENT.kind]
    return [e["note"] for e in events if (e["type"], e["reason"]) == ("Warning", "ScaleDownRefused")]


async def test_a_scale_down_the_ring_cannot_hold_is_refused_before_anything_changes(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    """The check comes first: no system keyspace lowered, no node asked to leave, the StatefulSet kept at
    three; and the pass completes (no NotReady: a failed handler would make putting the spec back a
    no-op for kopf). A second pass with the same refusal posts no second Event."""
    await a_ring_of_three(kube, deps, agents)
    agents.refuse("leave_check", 409, "conflict", SAID)
    status = await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    assert agents.of("leave_check", attempted=True) == [(2, [])]
    assert agents.of("ensure_ring_replication") == agents.of("decommission", attempted=True) == []
    assert replicas(kube) == 3  # every pod keeps its data
    record = json.loads(kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_USERS])
    assert record["ring"] == 3  # the Users phase fits the nodes kept, not spec.replicas
    cond = scale_down_condition(kube)
    assert (cond["status"], cond["reason"]) == ("False", "Refused")
    assert cond["message"] == f"the ring keeps its 3 nodes: conflict: {SAID}"
    assert status.observed_generation == 2
    assert refused_events(kube) == [cond["message"]]
    await run.reconcile(parsed(CLUSTER, 2, **SMALLER), scale_down(kube), deps, LOG)
    assert len(refused_events(kube)) == 1 and replicas(kube) == 3


async def test_the_refresh_asks_again_and_shrinks_once_the_keyspace_is_lowered(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await a_ring_of_three(kube, deps, agents)
    agents.refuse("leave_check", 409, "conflict", SAID)
    asked(kube, 2, **SMALLER)
    await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    await run.refresh(parsed(CLUSTER, 2, **SMALLER), scale_down(kube), deps, LOG)  # still refused
    assert len(agents.of("leave_check", attempted=True)) == 2 and replicas(kube) == 3
    del agents.failures["leave_check"]  # the keyspace in the way was lowered over CQL
    with contextlib.suppress(NotReady):
        await run.refresh(parsed(CLUSTER, 2, **SMALLER), scale_down(kube), deps, LOG)
    assert agents.of("decommission") == [url(2)] and replicas(kube) == 2
    assert (scale_down_condition(kube)["status"], scale_down_condition(kube)["reason"]) == (
        "True",
        "Decommissioned",
    )
    # A ring at its size is refreshed as usual: nobody is asked to leave again.
    agents.calls.clear()
    await run.refresh(parsed(CLUSTER, 2, **SMALLER), scale_down(kube), deps, LOG)
    assert agents.of("leave_check") == agents.of("decommission") == []


async def test_a_refresh_with_an_older_body_than_the_resource_never_shrinks(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    """The refresh was handed generation 2 (replicas 2, refused), but the user has put replicas back
    since (generation 3): it does not ask again, even though the keyspace in the way is gone now."""
    await a_ring_of_three(kube, deps, agents)
    agents.refuse("leave_check", 409, "conflict", SAID)
    asked(kube, 2, **SMALLER)
    await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    asked(kube, 3, replicas=3, datastore=CASSANDRA)
    del agents.failures["leave_check"]
    agents.calls.clear()
    await run.refresh(parsed(CLUSTER, 2, **SMALLER), scale_down(kube), deps, LOG)
    assert agents.of("leave_check") == agents.of("decommission") == [] and replicas(kube) == 3


async def test_putting_replicas_back_after_a_refusal_settles_the_condition(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await a_ring_of_three(kube, deps, agents)
    agents.refuse("leave_check", 409, "conflict", SAID)
    await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    status = await run.reconcile(
        parsed(CLUSTER, 3, replicas=3, datastore=CASSANDRA), scale_down(kube), deps, LOG
    )
    assert status.observed_generation == 3 and replicas(kube) == 3
    cond = scale_down_condition(kube)
    assert (cond["status"], cond["reason"]) == ("True", "Settled")
    assert agents.of("decommission", attempted=True) == []


async def test_a_node_that_refuses_to_leave_keeps_the_nodes_still_in_the_ring(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    """The check passed, then the leaving node itself refused (a keyspace made in between): the pass
    completes with the StatefulSet at the nodes above it gone and it kept."""
    await a_ring_of_three(kube, deps, agents)
    agents.refuse("decommission", 409, "conflict", SAID)
    await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    assert replicas(kube) == 3  # db-2 refused: it keeps its pod and data
    cond = scale_down_condition(kube)
    assert (cond["status"], cond["reason"]) == ("False", "Refused")
    assert cond["message"] == f"db-2 was not decommissioned: conflict: {SAID}"
    assert refused_events(kube) == [cond["message"]]


def member(pod: str, state: str, address: str | None = "10.0.0.9") -> dict[str, Any]:
    return {"pod": pod, "ringState": state, "address": address, "hostId": "h"}


def test_replacements_name_each_down_member_and_withdraw_those_up_again() -> None:
    status = parse_status({"members": [member("db-0", "UN"), member("db-1", "DN"), member("db-5", "DN")]})
    assert wanted_replacements(status, 3) == {"db-1": "10.0.0.9"}  # db-5 is beyond the ring's size
    assert wanted_replacements(None, 3) == {}
    have = {"data": {"cassandra.yaml": "x", "replace-address.db-0": "10.0.0.1"}}
    assert replacement_patch(have, {"db-1": "10.0.0.9"}) == {
        "replace-address.db-1": "10.0.0.9",
        "replace-address.db-0": None,
    }
    assert replacement_patch({"data": {"replace-address.db-1": "10.0.0.9"}}, {"db-1": "10.0.0.9"}) == {}


async def test_the_refresh_writes_a_down_members_address_into_the_configmap(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await a_ring_of_three(kube, deps, agents)
    cluster = kube.find(CUSTOM["DatabaseCluster"], "ns", "db")
    raw = {**cluster["status"], "members": [member("db-0", "UN"), member("db-2", "DN", "10.0.0.3")]}
    await run.refresh(parsed(CLUSTER, replicas=3, datastore=CASSANDRA), raw, deps, LOG)
    data = kube.find(CONFIG_MAP, "ns", "db-config")["data"]
    assert data["replace-address.db-2"] == "10.0.0.3" and "cassandra.yaml" in data
    raw["members"] = [member("db-0", "UN"), member("db-2", "UN", "10.0.0.3")]
    await run.refresh(parsed(CLUSTER, replicas=3, datastore=CASSANDRA), raw, deps, LOG)
    assert "replace-address.db-2" not in kube.find(CONFIG_MAP, "ns", "db-config")["data"]


async def test_a_spec_keyspace_lowered_with_the_shrink_is_altered_before_the_node_leaves(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    shop = {"databases": [{"name": "shop", "replicationFactor": 3}, {"name": "logs", "replicationFactor": 1}]}
    kube.put(body(CLUSTER, replicas=3, datastore=CASSANDRA, **shop))
    for _ in range(2):
        with contextlib.suppress(NotReady):
            await run.reconcile(parsed(CLUSTER, replicas=3, datastore=CASSANDRA, **shop), None, deps, LOG)
        seed_members(kube, 3, "cassandra")
    assert ("shop", 3) in agents.of("ensure_database")
    for i in range(3):
        agents.statuses[url(i)] = node_status(f"h{i}", ["h0", "h1", "h2"])
    agents.calls.clear()
    smaller = {
        "databases": [{"name": "shop", "replicationFactor": 2}, {"name": "logs", "replicationFactor": 1}]
    }
    with contextlib.suppress(NotReady):
        await run.reconcile(parsed(CLUSTER, 2, replicas=2, datastore=CASSANDRA, **smaller), None, deps, LOG)
    assert [m for _, m, _ in agents.calls if m != "status"][:4] == [
        "leave_check",
        "ensure_ring_replication",
        "ensure_database",
        "decommission",
    ]
    assert agents.of("leave_check") == [(2, ["shop"])]  # what the phase lowers is not in the way
    assert agents.of("ensure_database")[0] == ("shop", 2)  # logs (1) needs no change
    record = json.loads(kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_USERS])
    assert (record["ring"], record["factors"]) == (2, {"shop": 2, "logs": 1})
    assert replicas(kube) == 2


async def test_the_refresh_settles_a_stale_refused_scale_down_once_the_ring_has_its_size(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await a_ring_of_three(kube, deps, agents)
    cluster = kube.find(CUSTOM["DatabaseCluster"], "ns", "db")
    refused = {"type": "ScaleDown", "status": "False", "reason": "Refused", "message": "db-2 was not ..."}
    raw = {**cluster["status"], "conditions": [*cluster["status"]["conditions"], refused]}
    # Still three nodes while the spec asks for two, and still refused: the refusal stands.
    agents.refuse("leave_check", 409, "conflict", SAID)
    await run.refresh(parsed(CLUSTER, 2, replicas=2, datastore=CASSANDRA), raw, deps, LOG)
    (cond,) = [c for c in scale_down(kube)["conditions"] if c["type"] == "ScaleDown"]
    assert (cond["status"], cond["reason"]) == ("False", "Refused")
    # Three asked for and three run (given up, or a stale refusal written back after the shrink): settled.
    await run.refresh(parsed(CLUSTER, replicas=3, datastore=CASSANDRA), raw, deps, LOG)
    (cond,) = [c for c in scale_down(kube)["conditions"] if c["type"] == "ScaleDown"]
    assert (cond["status"], cond["reason"]) == ("True", "Settled")
    assert cond["message"] == "the ring runs the 3 nodes spec.replicas asks for"


async def test_a_refresh_begun_before_the_decommission_was_written_does_not_drop_its_condition(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    """Seen on pods: a status refresh handed the body from before the reconcile's write put the older
    conditions back, and ScaleDown True was gone. A refresh writes only over the resourceVersion it was
    handed (Context.write_precondition), else rebased over what is stored: ScaleDown stays; a refresh of
    the current body writes over its own version."""
    await a_ring_of_three(kube, deps, agents)
    asked(kube, 2, **SMALLER)
    stale = copy.deepcopy(kube.find(CUSTOM["DatabaseCluster"], "ns", "db"))
    with contextlib.suppress(NotReady):
        await run.reconcile(parsed(CLUSTER, 2, **SMALLER), None, deps, LOG)
    assert scale_down_condition(kube)["reason"] == "Decommissioned" and replicas(kube) == 2
    await run.refresh(parse_body(CLUSTER, stale, ClusterSpec), stale.get("status"), deps, LOG)
    assert scale_down_condition(kube)["reason"] == "Decommissioned"
    current = copy.deepcopy(kube.find(CUSTOM["DatabaseCluster"], "ns", "db"))
    handed = current["metadata"]["resourceVersion"]
    raw = {
        **current["status"],
        "conditions": [c for c in current["status"]["conditions"] if c["type"] != "Ready"],
    }
    await run.refresh(parse_body(CLUSTER, current, ClusterSpec), raw, deps, LOG)
    assert kube.find(CUSTOM["DatabaseCluster"], "ns", "db")["metadata"]["resourceVersion"] != handed
    assert scale_down_condition(kube)["reason"] == "Decommissioned"
