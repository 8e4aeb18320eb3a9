"""The phase list against the fake API server: what is written, what is never written."""

from __future__ import annotations

import base64
import copy
import dataclasses

import pytest

from kubetrove.api.status import Phase
from kubetrove.k8s.kinds import CONFIG_MAP, CUSTOM, EVENT, NETWORK_POLICY, PVC, SECRET, SERVICE, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.applied import APPLIED_GENERATION
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import InvalidSpec
from tests.unit.reconcile.conftest import CLUSTER, INSTANCE, LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

DBI = CUSTOM["DatabaseInstance"]


def seed_cr(kube: FakeKube, kind=INSTANCE, **spec) -> None:
    kube.put(body(kind, **spec))


def children(kube: FakeKube) -> dict:
    """Every object except our custom resources and Events (what 'no child changed' compares)."""
    return {k: copy.deepcopy(v) for k, v in kube.objects.items() if k[1] not in ("DatabaseInstance", "Event")}


async def test_create_applies_every_child_and_reports_status(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    status = await run.reconcile(parsed(), None, deps, LOG)
    for rtype, name in [
        (SECRET, "db-credentials"),
        (SECRET, "db-agent-token"),
        (CONFIG_MAP, "db-config"),
        (SERVICE, "db-headless"),
        (SERVICE, "db-rw"),
        (SERVICE, "db-ro"),
        (STATEFULSET, "db"),
    ]:
        assert kube.find(rtype, "ns", name) is not None, name
    sts = kube.find(STATEFULSET, "ns", "db")
    assert sts["metadata"]["annotations"][APPLIED_GENERATION] == "1"
    assert sts["metadata"]["ownerReferences"][0]["uid"] == "uid-db"
    assert status.phase is Phase.PROVISIONING  # no controller here: nothing is ready
    cr = kube.find(DBI, "ns", "db")
    assert cr["status"]["phase"] == "Provisioning"
    assert cr["status"]["credentialsSecret"] == "db-credentials"
    assert cr["status"]["endpoints"]["readWrite"] == "db-rw.ns.svc:3306"


async def test_invalid_spec_changes_no_child_and_reports_each_field(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    await run.reconcile(parsed(), None, deps, LOG)
    before, writes = children(kube), len(kube.calls)
    bad = parsed(generation=2, parameters={"no_such_parameter": "1"}, storage={"size": "512Mi"})
    with pytest.raises(InvalidSpec) as err:
        await run.reconcile(bad, kube.find(DBI, "ns", "db").get("status"), deps, LOG)
    assert {p.field for p in err.value.problems} >= {"spec.parameters.no_such_parameter", "spec.storage.size"}
    assert children(kube) == before
    assert {verb for verb, _, _ in kube.calls[writes:]} == {"patch/status", "create"}
    status = kube.find(DBI, "ns", "db")["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "Invalid")
    assert (
        "spec.parameters.no_such_parameter" in failed["message"] and "spec.storage.size" in failed["message"]
    )
    (event,) = [v for k, v in kube.objects.items() if k[1] == EVENT.kind]
    assert event["type"] == "Warning" and event["reason"] == "InvalidSpec"
    assert "spec.parameters.no_such_parameter" in event["note"]


async def test_invalid_create_creates_nothing(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    with pytest.raises(InvalidSpec):
        await run.reconcile(parsed(parameters={"bogus": "1"}), None, deps, LOG)
    assert children(kube) == {}


async def test_credentials_are_never_overwritten(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    mine = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": "ns"}}
    kube.put({**mine, "stringData": {"root-password": "chosen-by-user"}})
    await run.reconcile(parsed(), None, deps, LOG)
    await run.reconcile(parsed(), None, deps, LOG)
    data = kube.find(SECRET, "ns", "db-credentials")["data"]
    assert base64.b64decode(data["root-password"]).decode() == "chosen-by-user"
    token = kube.find(SECRET, "ns", "db-agent-token")["data"]["token"]
    await run.reconcile(parsed(), None, deps, LOG)
    assert kube.find(SECRET, "ns", "db-agent-token")["data"]["token"] == token
    assert ("apply", "Secret", "db-credentials") not in kube.calls


async def test_missing_credential_keys_are_generated(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    meta = {"name": "db-credentials", "namespace": "ns"}
    kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"extra": "x"}})
    await run.reconcile(parsed(), None, deps, LOG)
    data = kube.find(SECRET, "ns", "db-credentials")["data"]
    assert set(data) == {"extra", "root-password"}
    assert base64.b64decode(data["extra"]).decode() == "x"


async def test_reconcile_twice_keeps_the_pod_template(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    await run.reconcile(parsed(), None, deps, LOG)
    first = copy.deepcopy(kube.find(STATEFULSET, "ns", "db"))
    await run.reconcile(parsed(), None, deps, LOG)
    second = kube.find(STATEFULSET, "ns", "db")
    assert second["spec"]["template"] == first["spec"]["template"]
    assert second["metadata"]["generation"] == first["metadata"]["generation"]


async def test_storage_growth_expands_pvcs_and_keeps_claim_templates(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    await run.reconcile(parsed(), None, deps, LOG)
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-db-0", "namespace": "ns"},
    }
    kube.put({**pvc, "spec": {"resources": {"requests": {"storage": "1Gi"}}}})
    await run.reconcile(parsed(generation=2, storage={"size": "2Gi"}), None, deps, LOG)
    assert kube.find(PVC, "ns", "data-db-0")["spec"]["resources"]["requests"]["storage"] == "2Gi"
    claim = kube.find(STATEFULSET, "ns", "db")["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"  # immutable: left as created


async def test_primary_replica_cluster_rolls_on_delete(kube: FakeKube, deps: Deps) -> None:
    kube.put(body(CLUSTER, replicas=3))
    await run.reconcile(parsed(CLUSTER, replicas=3), None, deps, LOG)
    sts = kube.find(STATEFULSET, "ns", "db")
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert sts["spec"]["replicas"] == 3


async def test_instance_uses_the_controllers_rolling_update(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    await run.reconcile(parsed(), None, deps, LOG)
    assert kube.find(STATEFULSET, "ns", "db")["spec"]["updateStrategy"]["type"] == "RollingUpdate"


async def test_refresh_keeps_a_failed_status(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    await run.reconcile(parsed(), None, deps, LOG)
    bad = parsed(generation=2, parameters={"bogus": "1"})
    with pytest.raises(InvalidSpec):
        await run.reconcile(bad, kube.find(DBI, "ns", "db").get("status"), deps, LOG)
    writes = len(kube.calls)
    await run.refresh(bad, kube.find(DBI, "ns", "db").get("status"), deps, LOG)
    assert kube.calls[writes:] == []
    assert kube.find(DBI, "ns", "db")["status"]["phase"] == "Failed"


@pytest.mark.parametrize(("policy", "kept"), [("Delete", False), ("Retain", True)])
async def test_delete_honours_the_volume_policy(kube: FakeKube, deps: Deps, policy: str, kept: bool) -> None:
    for name in ("data-db-0", "data-db-1", "data-dbx-0", "other"):
        meta = {"name": name, "namespace": "ns"}
        kube.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": {}})
    deleted = await run.delete(parsed(deletionPolicy={"volumes": policy}), deps, LOG)
    assert (kube.find(PVC, "ns", "data-db-0") is not None) is kept
    assert (kube.find(PVC, "ns", "data-db-1") is not None) is kept
    assert kube.find(PVC, "ns", "data-dbx-0") is not None and kube.find(PVC, "ns", "other") is not None
    assert sorted(deleted) == ([] if kept else ["data-db-0", "data-db-1"])


async def test_the_network_policy_follows_the_operator_setting(kube: FakeKube, deps: Deps) -> None:
    seed_cr(kube)
    on = dataclasses.replace(deps, network_policy_from="kubetrove-system")
    await run.reconcile(parsed(), None, on, LOG)
    policy = kube.find(NETWORK_POLICY, "ns", "db-net")
    assert policy is not None
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "kubetrove-system"}
    }
    await run.reconcile(parsed(), None, deps, LOG)  # switched off: the policy goes, nothing stays isolated
    assert kube.find(NETWORK_POLICY, "ns", "db-net") is None
