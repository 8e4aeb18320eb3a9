"""kubectl trove builds the same custom resources a user would write (pure builders)."""

from __future__ import annotations

import pytest

from kubetrove.api.resources import CLUSTER, INSTANCE
from kubetrove.cli import manifests
from kubetrove.cli.manifests import CreateRequest


def test_one_member_is_an_instance_and_more_is_a_cluster() -> None:
    base = CreateRequest(name="orders", namespace="dev", engine="mariadb", version="10.11")
    assert manifests.create_manifest(base)["kind"] == INSTANCE.kind
    many = manifests.create_manifest(CreateRequest(**{**base.__dict__, "replicas": 3}))
    assert many["kind"] == CLUSTER.kind and many["spec"]["replicas"] == 3
    forced = manifests.create_manifest(CreateRequest(**{**base.__dict__, "cluster": True}))
    assert forced["kind"] == CLUSTER.kind and "replicas" not in forced["spec"]


def test_flags_become_the_spec_and_the_spec_parses() -> None:
    req = CreateRequest(
        name="orders", namespace="dev", engine="postgresql", version="15", storage="5Gi", cpu="250m",
        memory="1Gi", databases=("shop",), users=(("app", "shop", "readWrite"), ("bi", "sales", "read")),
    )  # fmt: skip
    body = manifests.create_manifest(req)
    spec = body["spec"]
    assert body["metadata"] == {"name": "orders", "namespace": "dev"}
    assert spec["storage"] == {"size": "5Gi"}
    assert spec["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    # A user's database is created too, once.
    assert spec["databases"] == [{"name": "shop"}, {"name": "sales"}]
    assert spec["users"][1] == {"name": "bi", "grants": [{"database": "sales", "privileges": ["read"]}]}
    INSTANCE.spec.model_validate(spec)  # the operator's own model accepts it


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("app", ("app", "", "readWrite")),
        ("app:shop", ("app", "shop", "readWrite")),
        ("r:shop:read", ("r", "shop", "read")),
    ],
)
def test_user_flag(text: str, want: tuple[str, str, str]) -> None:
    assert manifests.parse_user(text) == want


@pytest.mark.parametrize("text", ["", ":shop", "a:b:c:d", "app:shop:superuser"])
def test_bad_user_flags_are_refused_with_the_flag_named(text: str) -> None:
    with pytest.raises(ValueError, match="--user"):
        manifests.parse_user(text)


def _backup(kind: str = "DatabaseCluster", status: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": "b1", "namespace": "dev"},
        "spec": {"source": {"kind": kind, "name": "orders"}},
        "status": status or {"phase": "Completed", "engine": "mariadb", "engineVersion": "10.11"},
    }


def test_restore_copies_the_sources_shape_into_a_new_resource() -> None:
    source = {
        "spec": {
            "datastore": {"type": "mariadb", "version": "10.11"},
            "replicas": 3,
            "storage": {"size": "9Gi"},
        }
    }
    body = manifests.restore_manifest(_backup(), source, "orders-copy")
    assert body["kind"] == CLUSTER.kind and body["metadata"]["name"] == "orders-copy"
    assert body["spec"]["storage"] == {"size": "9Gi"} and body["spec"]["replicas"] == 3
    assert body["spec"]["restoreFrom"] == {"backup": "b1"}
    assert manifests.restore_manifest(_backup(), source, "x", cluster=False)["kind"] == INSTANCE.kind


def test_restore_without_the_source_uses_the_backups_engine_and_version() -> None:
    body = manifests.restore_manifest(_backup("DatabaseInstance"), None, "copy")
    assert body["kind"] == INSTANCE.kind
    assert body["spec"]["datastore"] == {"type": "mariadb", "version": "10.11"}


def test_restore_of_a_backup_without_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="no engine"):
        manifests.restore_manifest(_backup(status={"phase": "Completed"}), None, "copy")
