"""The generated CRDs (crds/*.yaml, from kubetrove.api) on a real kube-apiserver: schema validation is live.

Each invalid case asserts on the server's own message, so a schema that stops rejecting (or rejects
for another reason) fails the test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import LocalCluster

CRDS = Path(__file__).resolve().parents[2] / "crds"
GROUP, VERSION, PLURAL = "kubetrove.io", "v1alpha1", "databaseclusters"

VALID: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "DatabaseCluster",
    "metadata": {"name": "orders"},
    "spec": {"datastore": {"type": "postgresql", "version": "16"}},
}


def crd_files() -> list[Path]:
    """The generated CRD manifests (the test fails if `make crds` produced none)."""
    files = sorted(CRDS.glob("*.yaml"))
    assert files, f"no CRDs in {CRDS}: run `make crds`"
    return files


@pytest.fixture
def crds(local_cluster: LocalCluster, eventually: Callable[..., Any]) -> list[str]:
    """Apply crds/*.yaml (server-side, idempotent on a reused cluster); names once all are Established."""
    names = [yaml.safe_load(f.read_text())["metadata"]["name"] for f in crd_files()]
    local_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    ext = client.ApiextensionsV1Api(local_cluster.api)

    def established(name: str) -> bool:
        conds = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    for name in names:
        eventually(lambda n=name: established(n), f"CRD {name} Established")
    return names


def _create(api: client.ApiClient, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, body
    )
    return result


def _rejection(api: client.ApiClient, ns: str, body: dict[str, Any]) -> str:
    """Create body, expect 422 Invalid; the server's message."""
    with pytest.raises(ApiException) as err:
        _create(api, ns, body)
    assert err.value.status == 422, err.value.body
    status = json.loads(err.value.body)
    assert status["reason"] == "Invalid"
    return str(status["message"])


def test_all_generated_crds_are_established(crds: list[str]) -> None:
    assert f"{PLURAL}.{GROUP}" in crds
    assert len(crds) == len(crd_files())


def test_valid_databasecluster_is_accepted_with_schema_defaults(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    created = _create(api_client, namespace, copy.deepcopy(VALID))
    assert created["spec"]["datastore"] == {"type": "postgresql", "version": "16"}
    assert created["spec"]["replicas"] == 3  # structural-schema default applied by the server
    got = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "orders"
    )
    assert got["metadata"]["uid"] == created["metadata"]["uid"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("datastore", "type"), "oracle", 'spec.datastore.type: Unsupported value: "oracle"'),
        (
            ("replicas",),
            0,
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ),
        (("replicas",), 99, "spec.replicas in body should be less than or equal to 15"),
        (("datastore", "version"), "latest", "spec.datastore.version in body should match"),
        (
            ("backup",),
            {"verifyMaxRestoreSeconds": 600},
            'spec.backup: Invalid value: "object": verifyMaxRestoreSeconds needs verify: true',
        ),
    ],
    ids=["engine-oracle", "replicas-0", "replicas-99", "version-latest", "restore-target-without-verify"],
)
def test_invalid_databasecluster_is_rejected_with_readable_message(
    crds: list[str],
    api_client: client.ApiClient,
    namespace: str,
    path: tuple[str, ...],
    value: Any,
    expected: str,
) -> None:
    body = copy.deepcopy(VALID)
    spec = body["spec"]
    for key in path[:-1]:
        spec = spec[key]
    spec[path[-1]] = value
    message = _rejection(api_client, namespace, body)
    assert expected in message
    assert 'DatabaseCluster.kubetrove.io "orders" is invalid' in message


def test_missing_datastore_is_rejected(crds: list[str], api_client: client.ApiClient, namespace: str) -> None:
    body = copy.deepcopy(VALID)
    body["spec"] = {"replicas": 1}
    assert "spec.datastore: Required value" in _rejection(api_client, namespace, body)


def test_engine_change_is_rejected_by_the_cel_rule(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    _create(api_client, namespace, copy.deepcopy(VALID))
    patch = {"spec": {"datastore": {"type": "mysql", "version": "9.7"}}}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "orders", patch)
    assert err.value.status == 422
    assert "datastore.type is immutable" in json.loads(err.value.body)["message"]
