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


# spec.storage.autogrow, careless and hostile, on the real API server: (autogrow, what the message says).
# Each refusal names the field; what the schema cannot see (a maximum below the size, an increment of 0
# or 20 bytes) is the operator's, tests/e2e/test_operator_invalid.py.
AUTOGROW_FIELD = "spec.storage.autogrow"
THRESHOLD, INCREMENT, MAXIMUM = (f"{AUTOGROW_FIELD}.{f}" for f in ("threshold", "increment", "maximum"))
BAD_INCREMENT, BAD_MAXIMUM = f"{INCREMENT} in body should match", f"{MAXIMUM} in body should match"
LOW, HIGH, NOT_INT = (
    f"{THRESHOLD} in body {m}" for m in ("should be greater", "should be less", "must be of type")
)
AUTOGROW_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("threshold-0", {"threshold": 0, "maximum": "20Gi"},
     f"{THRESHOLD}: Invalid value: 0: {THRESHOLD} in body should be greater than or equal to 50"),
    ("threshold-49", {"threshold": 49, "maximum": "20Gi"}, LOW),
    ("threshold-minus-1", {"threshold": -1, "maximum": "20Gi"}, LOW),
    ("threshold-96", {"threshold": 96, "maximum": "20Gi"},
     f"{THRESHOLD}: Invalid value: 96: {THRESHOLD} in body should be less than or equal to 95"),
    ("threshold-100", {"threshold": 100, "maximum": "20Gi"}, HIGH),
    ("threshold-string", {"threshold": "80", "maximum": "20Gi"},
     f'{THRESHOLD}: Invalid value: "string": {THRESHOLD} in body must be of type integer'),
    ("threshold-80.5", {"threshold": 80.5, "maximum": "20Gi"}, NOT_INT),
    ("increment-0%", {"increment": "0%", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-101%", {"increment": "101%", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-1.5%", {"increment": "1.5%", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-minus-1Gi", {"increment": "-1Gi", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-abc", {"increment": "abc", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-empty", {"increment": "", "maximum": "20Gi"}, BAD_INCREMENT),
    ("increment-trailing-space", {"increment": "1Gi ", "maximum": "20Gi"}, BAD_INCREMENT),
    ("maximum-missing", {"threshold": 80}, f"{MAXIMUM}: Required value"),
    ("autogrow-empty", {}, f"{MAXIMUM}: Required value"),
    ("maximum-empty", {"maximum": ""}, BAD_MAXIMUM),
    ("maximum-abc", {"maximum": "abc"}, BAD_MAXIMUM),
    ("maximum-minus-1Gi", {"maximum": "-1Gi"}, BAD_MAXIMUM),
    ("maximum-percent", {"maximum": "20%"}, BAD_MAXIMUM),
]  # fmt: skip


def _with_autogrow(autogrow: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body["spec"]["storage"] = {"size": "10Gi", "autogrow": autogrow}
    return body


@pytest.mark.parametrize(
    ("autogrow", "expected"), [c[1:] for c in AUTOGROW_REFUSED], ids=[c[0] for c in AUTOGROW_REFUSED]
)
def test_invalid_autogrow_is_rejected_naming_the_field(
    crds: list[str], api_client: client.ApiClient, namespace: str, autogrow: dict[str, Any], expected: str
) -> None:
    message = _rejection(api_client, namespace, _with_autogrow(autogrow))
    assert expected in message
    assert 'DatabaseCluster.kubetrove.io "orders" is invalid' in message


@pytest.mark.parametrize(
    ("autogrow", "stored"),
    [
        # accepted by the schema; the operator refuses what it must (increment 0, maximum below the size)
        ({"maximum": "10Gi"}, {"threshold": 80, "increment": "20%", "maximum": "10Gi"}),
        ({"maximum": "1Ei", "increment": "1000000Ti"},
         {"threshold": 80, "increment": "1000000Ti", "maximum": "1Ei"}),
        ({"maximum": "20Gi", "increment": "10Mi", "threshold": 95},
         {"threshold": 95, "increment": "10Mi", "maximum": "20Gi"}),
        # integers, as Kubernetes quantities allow (the operator refuses increment 0)
        ({"maximum": 21474836480, "increment": 0, "threshold": 50},
         {"threshold": 50, "increment": 0, "maximum": 21474836480}),
        # a JSON number with no fraction is an integer to the API server, and stored as one
        ({"maximum": "20Gi", "threshold": 80.0}, {"threshold": 80, "increment": "20%", "maximum": "20Gi"}),
    ],
    ids=["maximum-equals-size-defaults", "huge", "tiny-increment", "integers", "threshold-80.0"],
)  # fmt: skip
def test_valid_autogrow_is_stored_with_its_defaults(
    crds: list[str],
    api_client: client.ApiClient,
    namespace: str,
    autogrow: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    created = _create(api_client, namespace, _with_autogrow(autogrow))
    assert created["spec"]["storage"]["autogrow"] == stored


def test_autogrow_null_is_pruned_to_autogrow_off(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    """``autogrow: null`` (the field is not nullable) is dropped by the API server: autogrow is off."""
    created = _create(api_client, namespace, _with_autogrow(None))
    assert created["spec"]["storage"] == {"size": "10Gi"}


def test_a_misspelt_autogrow_field_is_refused_strictly_or_pruned(
    crds: list[str], local_cluster: LocalCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """No x-kubernetes-preserve-unknown-fields under spec.storage: a typo (``treshold``) is never stored.
    ``kubectl apply`` (its default --validate=strict) and fieldValidation=Strict refuse it, naming it; a
    client that asks for no validation (``--validate=false``, most API clients: the server's default is
    Warn) has it pruned with only a warning, and the default threshold, 80, applies."""
    body = _with_autogrow({"treshold": 70, "maximum": "20Gi"})
    body["metadata"]["namespace"] = namespace
    with pytest.raises(Exception, match=r'unknown field "spec\.storage\.autogrow\.treshold"'):
        local_cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
        )
    assert err.value.status in (400, 422), err.value.body
    assert 'unknown field "spec.storage.autogrow.treshold"' in json.loads(err.value.body)["message"]
    local_cluster.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(body))
    got = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "orders"
    )
    assert got["spec"]["storage"]["autogrow"] == {"threshold": 80, "increment": "20%", "maximum": "20Gi"}
