"""deletionPolicy.volumes=Retain keeps the password Secrets with the volumes; a new resource adopts them."""

from __future__ import annotations

import base64
import contextlib

import pytest

from kubetrove.api.resources import INSTANCE, parse_body
from kubetrove.k8s.kinds import SECRET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

SPEC = {"users": [{"name": "app"}, {"name": "ext", "passwordSecretRef": {"name": "theirs"}}]}
SECRETS = ("db-credentials", "db-user-app")


def owners(kube: FakeKube, name: str) -> list[str]:
    return [r["uid"] for r in kube.find(SECRET, "ns", name)["metadata"].get("ownerReferences") or []]


async def create(kube: FakeKube, deps: Deps, policy: str) -> None:
    kube.put(body(deletionPolicy={"volumes": policy}, **SPEC))
    kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "theirs", "namespace": "ns"}})
    with contextlib.suppress(NotReady):  # users wait for ready members; their Secrets exist already
        await run.reconcile(parsed(deletionPolicy={"volumes": policy}, **SPEC), None, deps, LOG)


@pytest.mark.parametrize(("policy", "owned"), [("Retain", []), ("Delete", ["uid-db"])])
async def test_retain_orphans_the_password_secrets(
    kube: FakeKube, deps: Deps, policy: str, owned: list[str]
) -> None:
    await create(kube, deps, policy)
    assert all(owners(kube, name) == ["uid-db"] for name in SECRETS)
    await run.delete(parsed(deletionPolicy={"volumes": policy}, **SPEC), deps, LOG)
    for name in SECRETS:
        assert owners(kube, name) == owned, name
    assert owners(kube, "db-agent-token") == ["uid-db"]  # not needed to open the data: goes with the resource


async def test_a_new_resource_adopts_the_retained_secrets_and_keeps_their_values(
    kube: FakeKube, deps: Deps
) -> None:
    await create(kube, deps, "Retain")
    before = {n: kube.find(SECRET, "ns", n)["data"] for n in SECRETS}
    await run.delete(parsed(deletionPolicy={"volumes": "Retain"}, **SPEC), deps, LOG)
    again = body(deletionPolicy={"volumes": "Retain"}, **SPEC)
    again["metadata"]["uid"] = "uid-db-2"
    kube.put(again)
    with contextlib.suppress(NotReady):
        await run.reconcile(parse_body(INSTANCE, again, INSTANCE.spec), None, deps, LOG)  # type: ignore[arg-type]
    for name in SECRETS:
        assert owners(kube, name) == ["uid-db-2"]
        assert kube.find(SECRET, "ns", name)["data"] == before[name]
    assert base64.b64decode(before["db-user-app"]["password"]).decode().startswith("tok")


async def test_a_users_own_secret_is_used_but_never_adopted(kube: FakeKube, deps: Deps) -> None:
    kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": "ns"}}
    )
    await create(kube, deps, "Delete")
    assert owners(kube, "db-credentials") == []


def test_generated_passwords_fit_mysql_replication() -> None:
    """The root password is also the replication password, and MySQL's CHANGE REPLICATION SOURCE TO
    refuses a SOURCE_PASSWORD over 32 characters; still 192 random bits, in URL-safe characters."""
    token = Deps(kube=FakeKube(), agent_image="agent:test").token
    values = {token() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) == 32 and v.replace("-", "").replace("_", "").isalnum() for v in values)
