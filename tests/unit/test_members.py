"""The gateway to the agents: member pods, the token, clients closed, every failure mapped once."""

from __future__ import annotations

import base64

import pytest

from kubetrove.api.common import Engine
from kubetrove.api.resources import INSTANCE, ObjectRef
from kubetrove.members import AgentNotReady, AgentRefused, AgentUnreachable, Members
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.fake_kube import FakeKube

Gate = tuple[Members, FakeKube, FakeAgents]
REF = ObjectRef("ns", "db", "uid-db", 1, INSTANCE)
LABELS = {
    "app.kubernetes.io/name": "mariadb",
    "app.kubernetes.io/instance": "db",
    "app.kubernetes.io/managed-by": "kubetrove",
}


def pod(name: str, ip: str | None = None, **labels: str) -> dict[str, object]:
    status = {"podIP": ip} if ip else {}
    meta = {"name": name, "namespace": "ns", "labels": {**LABELS, **labels}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}


@pytest.fixture
def members() -> tuple[Members, FakeKube, FakeAgents]:
    kube, agents = FakeKube(), FakeAgents()
    return Members(kube, agents), kube, agents


async def test_pods_are_the_ones_the_statefulset_selects(
    members: Gate,
) -> None:
    gateway, kube, _ = members
    kube.put(pod("db-0", "10.0.0.1"))
    kube.put(pod("db-1", **{"app.kubernetes.io/instance": "other"}))
    assert [p["metadata"]["name"] for p in await gateway.pods(REF, Engine.MARIADB)] == ["db-0"]


async def test_token_is_read_from_the_token_secret(members: Gate) -> None:
    gateway, kube, _ = members
    assert await gateway.token("ns", "db") is None
    data = {"token": base64.b64encode(b"t0k").decode()}
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-agent-token", "namespace": "ns"},
            "data": data,
        }
    )
    assert await gateway.token("ns", "db") == "t0k"


def test_url_is_the_pod_ip_else_its_dns_name(members: Gate) -> None:
    gateway, _, _ = members
    assert gateway.url("ns", pod("db-0", "10.0.0.1")) == "http://10.0.0.1:8432"
    assert gateway.url("ns", pod("db-1")) == "http://db-1.db-headless.ns.svc:8432"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, AgentRefused), (409, AgentRefused), (503, AgentNotReady), (None, AgentUnreachable)],
)
async def test_every_failure_is_one_of_three_errors_naming_the_pod(
    members: Gate, status: int | None, kind: type[Exception]
) -> None:
    gateway, _, agents = members
    if status is None:
        agents.unreachable("drop_user")
    else:
        agents.refuse("drop_user", status, "engine_error", "no")
    async with gateway.agents("t0k") as block:
        with pytest.raises(kind, match=r"^db-0: ") as caught:
            await block.call("db-0", "http://x", lambda a: a.drop_user("app"))
    assert caught.value.status == status and caught.value.pod == "db-0"
    if status is not None:
        assert caught.value.said == "engine_error: no"


async def test_one_client_per_member_per_block_with_the_token(
    members: Gate,
) -> None:
    gateway, _, agents = members
    async with gateway.agents("t0k") as block:
        await block.call("db-0", "http://a", lambda a: a.drop_user("x"))
        await block.call("db-0", "http://a", lambda a: a.drop_user("y"))
        await block.call("db-1", "http://b", lambda a: a.drop_user("z"))
    assert agents.urls == ["http://a", "http://b"] and agents.tokens == ["t0k", "t0k"]
    assert agents.of("drop_user") == ["x", "y", "z"]
