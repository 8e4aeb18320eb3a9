"""Bad specs: the schema's share is refused by the API server; the rest by the operator, changing nothing."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, example, get_cr, poll, wait_phase


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"datastore": {"type": "oracle", "version": "19"}}, "spec.datastore.type"),
        ({"replicas": 0}, "spec.replicas"),
        ({"storage": {"size": "lots"}}, "spec.storage.size"),
        ({"storage": {"size": "2Gi", "autogrow": {"threshold": 100, "maximum": "4Gi"}}},
         "spec.storage.autogrow.threshold"),
        ({"storage": {"size": "2Gi", "autogrow": {"increment": "101%", "maximum": "4Gi"}}},
         "spec.storage.autogrow.increment"),
        ({"storage": {"size": "2Gi", "autogrow": {}}}, "spec.storage.autogrow.maximum: Required value"),
        # kubectl apply validates strictly by default: the typo is refused, not pruned (test_crds.py has both)
        ({"storage": {"size": "2Gi", "autogrow": {"treshold": 70, "maximum": "4Gi"}}},
         'unknown field "spec.storage.autogrow.treshold"'),
    ],
    ids=[
        "unknown-engine", "zero-replicas", "bad-quantity", "autogrow-threshold-100",
        "autogrow-increment-101%", "autogrow-without-maximum", "autogrow-typo",
    ],
)  # fmt: skip
def test_schema_invalid_is_rejected_by_the_server(
    local_cluster: LocalCluster, operator_crds: None, namespace: str, patch: dict, message: str
) -> None:
    body = example("mariadb-cluster", namespace)
    body["spec"].update(patch)
    with pytest.raises(Exception, match=message.replace(".", r"\.")):
        apply_cr(local_cluster, body)
    assert get_cr(local_cluster.api, body["kind"], namespace, body["metadata"]["name"]) is None


def _events(api: client.ApiClient, namespace: str, name: str) -> list[client.EventsV1Event]:
    items = client.EventsV1Api(api).list_namespaced_event(namespace).items
    return [e for e in items if e.regarding and e.regarding.name == name and e.reason == "InvalidSpec"]


def test_semantic_invalid_fails_with_condition_event_and_no_children(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    body = example("mariadb-instance", namespace)
    body["spec"]["parameters"] = {"no_such_parameter": "1", "max_connections": "5"}
    apply_cr(local_cluster, body)
    obj = wait_phase(local_cluster.api, body, "Failed", op=operator)
    failed = next(c for c in obj["status"]["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "Invalid"
    assert "spec.parameters.no_such_parameter" in failed["message"]
    assert "spec.parameters.max_connections" in failed["message"]
    (event, *_) = poll(
        lambda: _events(local_cluster.api, namespace, body["metadata"]["name"]), "Warning Event"
    )
    assert event.type == "Warning" and "spec.parameters.no_such_parameter" in event.note
    core, apps = client.CoreV1Api(local_cluster.api), client.AppsV1Api(local_cluster.api)
    assert apps.list_namespaced_stateful_set(namespace).items == []
    assert core.list_namespaced_secret(namespace).items == []
    assert [s.metadata.name for s in core.list_namespaced_service(namespace).items] == []


def test_invalid_update_keeps_the_running_children(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    body = example("postgresql-instance", namespace)
    apply_cr(local_cluster, body)
    wait_phase(local_cluster.api, body, "Ready", op=operator)
    apps = client.AppsV1Api(local_cluster.api)
    before = apps.read_namespaced_stateful_set("postgresql-demo", namespace)
    body["spec"]["storage"]["size"] = "512Mi"  # shrinking: refused
    body["spec"]["datastore"]["version"] = "99"  # not in the catalog
    apply_cr(local_cluster, body)
    obj = wait_phase(local_cluster.api, body, "Failed", op=operator)
    message = next(c["message"] for c in obj["status"]["conditions"] if c["type"] == "Failed")
    assert "spec.storage.size" in message and "spec.datastore.version" in message
    after = apps.read_namespaced_stateful_set("postgresql-demo", namespace)
    assert after.metadata.generation == before.metadata.generation
    assert after.spec.template == before.spec.template


def test_autogrow_maximum_below_the_size_fails_then_the_fix_recovers(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    """What the schema cannot see about autogrow (a maximum below spec.storage.size, an increment of 20
    bytes meant as 20 percent) fails the DatabaseCluster on those fields, with a Warning Event, creating
    nothing; the corrected spec then creates the cluster."""
    body = example("mariadb-cluster", namespace)
    name = body["metadata"]["name"]
    body["spec"]["storage"] = {"size": "2Gi", "autogrow": {"maximum": "1Gi", "increment": 20}}
    apply_cr(local_cluster, body)
    obj = wait_phase(local_cluster.api, body, "Failed", op=operator)
    failed = next(c for c in obj["status"]["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "Invalid"
    assert (
        "spec.storage.autogrow.maximum: 1Gi is below spec.storage.size (2Gi): autogrow could never grow"
        in failed["message"]
    )
    assert "spec.storage.autogrow.increment: 20 is less than 1Mi" in failed["message"]
    (event, *_) = poll(lambda: _events(local_cluster.api, namespace, name), "Warning Event")
    assert event.type == "Warning" and "spec.storage.autogrow.maximum" in event.note
    core, apps = client.CoreV1Api(local_cluster.api), client.AppsV1Api(local_cluster.api)
    assert apps.list_namespaced_stateful_set(namespace).items == []
    assert core.list_namespaced_secret(namespace).items == []
    assert core.list_namespaced_service(namespace).items == []
    assert core.list_namespaced_persistent_volume_claim(namespace).items == []

    body["spec"]["storage"]["autogrow"] = {"maximum": "4Gi", "increment": "20%"}
    apply_cr(local_cluster, body)
    obj = wait_phase(local_cluster.api, body, "Ready", timeout=180, op=operator)
    assert not [c for c in obj["status"]["conditions"] if c["type"] == "Failed" and c["status"] == "True"]
    assert obj["spec"]["storage"]["autogrow"] == {"threshold": 80, "increment": "20%", "maximum": "4Gi"}
    sts = apps.read_namespaced_stateful_set(name, namespace)
    assert sts.spec.volume_claim_templates[0].spec.resources.requests["storage"] == "2Gi"
