"""The Users phase: databases and users through the agent of the member taking writes, idempotently."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest

from kubetrove.api.resources import Kind
from kubetrove.k8s.kinds import CUSTOM, POD, SECRET, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.users import APPLIED_USERS
from kubetrove.render.names import ChildNames
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.conftest import CLUSTER, INSTANCE, LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

SHOP = {
    "databases": [{"name": "shop"}],
    "users": [{"name": "app", "grants": [{"database": "shop", "privileges": ["readWrite"]}]}],
}


@pytest.fixture
def udeps(deps: Deps) -> Deps:
    return deps


def seed_members(
    kube: FakeKube, replicas: int = 1, engine: str = "mariadb", primary: int | None = None
) -> None:
    """Ready pods with IPs (as kwok or the kubelet would report them) and a settled StatefulSet."""
    for i in range(replicas):
        labels = {"app.kubernetes.io/name": engine, "app.kubernetes.io/instance": "db"}
        labels["app.kubernetes.io/managed-by"] = "kubetrove"
        labels["controller-revision-hash"] = "r1"  # up to date: the Rollout phase leaves it alone
        if primary is not None:
            labels["kubetrove.io/role"] = "primary" if i == primary else "replica"
        meta = {"name": f"db-{i}", "namespace": "ns", "labels": labels}
        status = {"podIP": f"10.0.0.{i + 1}", "conditions": [{"type": "Ready", "status": "True"}]}
        kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status})
    sts = kube.find(STATEFULSET, "ns", "db")
    sts["status"] = {
        "observedGeneration": sts["metadata"]["generation"],
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "currentRevision": "r1",
        "updateRevision": "r1",
    }


async def ready(kube: FakeKube, deps: Deps, kind: Kind = INSTANCE, members: int = 1, **spec: Any) -> None:
    """Create the resource, then make its members ready (nothing is ready at the first reconcile)."""
    kube.put(body(kind, **spec))
    with contextlib.suppress(NotReady):  # users wait for ready members
        await run.reconcile(parsed(kind, **spec), None, deps, LOG)
    seed_members(
        kube, members, spec.get("datastore", {}).get("type", "mariadb"), 0 if kind is CLUSTER else None
    )


def secret_value(kube: FakeKube, name: str, key: str = "password") -> str:
    return base64.b64decode(kube.find(SECRET, "ns", name)["data"][key]).decode()


def users_condition(kube: FakeKube, kind: Kind = INSTANCE) -> dict[str, Any]:
    (cond,) = [
        c
        for c in kube.find(CUSTOM[kind.kind], "ns", "db")["status"]["conditions"]
        if c["type"] == "UsersReady"
    ]
    return dict(cond)


async def test_users_wait_for_ready_members(kube: FakeKube, udeps: Deps, agents: FakeAgents) -> None:
    kube.put(body(**SHOP))
    with pytest.raises(NotReady, match="ready"):
        await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    assert agents.calls == []
    assert users_condition(kube)["status"] == "False"


async def test_database_and_user_with_a_generated_password(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, **SHOP)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    password = secret_value(kube, ChildNames("db").user_secret("app"))
    assert password.startswith("tok")
    assert agents.calls == [
        ("http://10.0.0.1:8432", "ensure_database", ("shop", 1)),
        ("http://10.0.0.1:8432", "ensure_user", ("app", password, [("shop", ["readWrite"])])),
    ]
    secret = kube.find(SECRET, "ns", "db-user-app")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-db"
    assert password not in kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_USERS]
    assert users_condition(kube)["status"] == "True"


async def test_a_second_reconcile_calls_no_agent_and_keeps_the_password(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, **SHOP)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    first, calls = secret_value(kube, "db-user-app"), len(agents.calls)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    assert len(agents.calls) == calls and secret_value(kube, "db-user-app") == first


async def test_a_rotated_password_is_pushed_again(kube: FakeKube, udeps: Deps, agents: FakeAgents) -> None:
    await ready(kube, udeps, **SHOP)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    await kube.patch(SECRET, "ns", "db-user-app", {"stringData": {"password": "rotated"}})
    agents.calls.clear()
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    assert agents.calls == [
        ("http://10.0.0.1:8432", "ensure_user", ("app", "rotated", [("shop", ["readWrite"])]))
    ]


async def test_password_from_a_secret_reference(kube: FakeKube, udeps: Deps, agents: FakeAgents) -> None:
    spec = {"users": [{"name": "rep", "passwordSecretRef": {"name": "mine", "key": "pw"}}]}
    await ready(kube, udeps, **spec)
    with pytest.raises(NotReady, match="no password in Secret mine, key 'pw'"):
        await run.reconcile(parsed(**spec), None, udeps, LOG)
    assert users_condition(kube)["reason"] == "PasswordMissing"
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": "ns"},
            "stringData": {"pw": "s3cret"},
        }
    )
    await run.reconcile(parsed(**spec), None, udeps, LOG)
    assert agents.calls == [("http://10.0.0.1:8432", "ensure_user", ("rep", "s3cret", []))]
    assert kube.find(SECRET, "ns", ChildNames("db").user_secret("rep")) is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(b"\xff\xfepw", "the value is not UTF-8 text"), (b"a\x00b", "the password holds a NUL")],
)
async def test_an_unusable_password_names_the_secret_and_key(
    kube: FakeKube, udeps: Deps, agents: FakeAgents, raw: bytes, problem: str
) -> None:
    spec = {"users": [{"name": "rep", "passwordSecretRef": {"name": "mine", "key": "pw"}}]}
    await ready(kube, udeps, **spec)
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": "ns"},
            "data": {"pw": base64.b64encode(raw).decode(), "other": base64.b64encode(b"\x80").decode()},
        }
    )
    agents.calls.clear()
    with pytest.raises(NotReady, match=f"Secret ns/mine, key 'pw': {problem}"):
        await run.reconcile(parsed(**spec), None, udeps, LOG)
    condition = users_condition(kube)
    assert condition["reason"] == "PasswordUnusable" and "Secret ns/mine, key 'pw'" in condition["message"]
    assert agents.calls == []


async def test_removed_user_is_dropped_removed_database_is_kept(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, **SHOP)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    agents.calls.clear()
    await run.reconcile(parsed(generation=2), None, udeps, LOG)
    assert agents.calls == [("http://10.0.0.1:8432", "drop_user", "app")]  # spec.databases: never dropped
    agents.calls.clear()
    await run.reconcile(parsed(generation=2), None, udeps, LOG)
    assert agents.calls == []


async def test_agent_failure_sets_the_condition_and_retries(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, **SHOP)
    agents.refuse("*", 500, "engine_error", "access denied")
    with pytest.raises(NotReady, match="access denied"):
        await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    cond = users_condition(kube)
    assert (
        cond["status"] == "False" and cond["reason"] == "AgentFailed" and "access denied" in cond["message"]
    )
    agents.failures.clear()
    await run.reconcile(
        parsed(**SHOP), kube.find(CUSTOM["DatabaseInstance"], "ns", "db")["status"], udeps, LOG
    )
    assert [c[1] for c in agents.calls] == ["ensure_database", "ensure_user"]
    assert users_condition(kube)["status"] == "True"


async def test_status_refresh_keeps_the_users_condition(kube: FakeKube, udeps: Deps) -> None:
    await ready(kube, udeps, **SHOP)
    await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    await run.refresh(parsed(**SHOP), kube.find(CUSTOM["DatabaseInstance"], "ns", "db")["status"], udeps, LOG)
    assert users_condition(kube)["status"] == "True"


async def test_cluster_writes_to_the_labelled_primary_only(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, CLUSTER, 3, replicas=3, **SHOP)
    await kube.patch(POD, "ns", "db-0", {"metadata": {"labels": {"kubetrove.io/role": "replica"}}})
    with pytest.raises(NotReady, match="primary"):
        await run.reconcile(parsed(CLUSTER, replicas=3, **SHOP), None, udeps, LOG)
    assert "primary" in users_condition(kube, CLUSTER)["message"]
    await kube.patch(POD, "ns", "db-2", {"metadata": {"labels": {"kubetrove.io/role": "primary"}}})
    await run.reconcile(parsed(CLUSTER, replicas=3, **SHOP), None, udeps, LOG)
    assert {c[0] for c in agents.calls} == {"http://10.0.0.3:8432"}


async def test_engine_without_a_primary_writes_to_one_ready_member(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    spec: dict[str, Any] = {"replicas": 3, "datastore": {"type": "cassandra", "version": "5.0"}, **SHOP}
    kube.put(body(CLUSTER, **spec))
    with pytest.raises(NotReady):
        await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    seed_members(kube, 3, "cassandra")
    await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    assert agents.calls[:2] == [
        ("http://10.0.0.1:8432", "ensure_ring_replication", 3),  # system_auth first: no lockout
        ("http://10.0.0.1:8432", "ensure_database", ("shop", 3)),
    ]
    assert {c[0] for c in agents.calls} == {"http://10.0.0.1:8432"}


async def test_a_ring_pushes_again_when_a_keyspace_factor_changes(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    spec: dict[str, Any] = {"replicas": 3, "datastore": {"type": "cassandra", "version": "5.0"}, **SHOP}
    kube.put(body(CLUSTER, **spec))
    with pytest.raises(NotReady):
        await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    seed_members(kube, 3, "cassandra")
    await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    agents.calls.clear()
    await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    assert agents.calls == []  # recorded: nothing to do
    spec["databases"] = [{"name": "shop", "replicationFactor": 2}]
    kube.put(body(CLUSTER, **spec))
    await run.reconcile(parsed(CLUSTER, **spec), None, udeps, LOG)
    assert agents.calls == [("http://10.0.0.1:8432", "ensure_database", ("shop", 2))]


def test_user_secret_names_are_valid_and_distinct() -> None:
    names = {u: ChildNames("db").user_secret(u) for u in ("app", "App", "app_1", "_app", "APP_1")}
    assert names["app"] == "db-user-app"
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert name == name.lower() and "_" not in name and name[-1].isalnum()


async def test_an_unreachable_agent_still_gets_the_status_written_once(
    kube: FakeKube, udeps: Deps, agents: FakeAgents
) -> None:
    await ready(kube, udeps, **SHOP)
    agents.unreachable()
    kube.calls.clear()
    with pytest.raises(NotReady, match="db-0: agent unreachable"):
        await run.reconcile(parsed(**SHOP), None, udeps, LOG)
    status = kube.find(CUSTOM["DatabaseInstance"], "ns", "db")["status"]
    assert status["phase"] == "Ready"  # observed before the agent phase, written after it
    assert users_condition(kube)["reason"] == "AgentFailed"
    assert [c for c in kube.calls if c[0] == "patch/status"] == [("patch/status", "DatabaseInstance", "db")]
