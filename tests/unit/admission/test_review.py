"""kubetrove.admission on an in-memory API server: what it reads, the operator's exemption, metadata-only
updates, and quotas under parallel creates (the per-namespace lock and the reservations)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from kubetrove.admission.review import RESERVATION_SECONDS, Admission, Request
from kubetrove.k8s.admission import set_ca_bundle
from kubetrove.k8s.kinds import CUSTOM, VALIDATING_WEBHOOK
from tests.unit.reconcile.fake_kube import FakeKube

NS = "payments"
CLUSTERS = CUSTOM["DatabaseCluster"]


def seeded(quota: dict[str, Any] | None = None, **spec: Any) -> FakeKube:
    kube = FakeKube()
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"env": "prod"}}})
    kube.put({
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabasePolicy", "metadata": {"name": "prod-rules"},
        "spec": {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "quotas": quota or {}, **spec},
    })  # fmt: skip
    return kube


def body(name: str, engine: str = "mariadb", uid: str = "", rv: str = "", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": uid or f"uid-{name}"}
    if rv:
        meta["resourceVersion"] = rv
    return {
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseCluster", "metadata": meta,
        "spec": {"datastore": {"type": engine, "version": "10.11"}, "replicas": 3, **spec},
    }  # fmt: skip


def create(b: dict[str, Any], user: str = "alice", dry_run: bool = False) -> Request:
    return Request("DatabaseCluster", "CREATE", NS, b["metadata"]["name"], b, None, user, dry_run)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_engine_refusal_reads_policies_and_namespace_labels() -> None:
    kube = seeded(engines=[{"type": "postgresql"}])
    admission = Admission(kube, "system:serviceaccount:kt:operator")
    decision = await admission.review(create(body("db")))
    assert not decision.allowed
    assert decision.message().startswith("DatabasePolicy prod-rules: spec.datastore.type: engine mariadb")
    # The operator's own requests, and updates that keep the spec, are not reviewed.
    assert (await admission.review(create(body("db"), user="system:serviceaccount:kt:operator"))).allowed
    old = body("db", engine="mariadb")
    relabel = Request("DatabaseCluster", "UPDATE", NS, "db", {**old, "metadata": {**old["metadata"],
                      "labels": {"a": "b"}}}, old, "alice")  # fmt: skip
    assert (await admission.review(relabel)).allowed


async def test_parallel_creates_never_exceed_the_quota() -> None:
    kube = seeded({"clusters": 3})
    admission = Admission(kube, "operator")

    async def attempt(i: int) -> bool:
        b = body(f"db{i}")
        decision = await admission.review(create(b))
        if decision.allowed:  # the API server stores it a moment later
            await asyncio.sleep(0.01)
            await kube.create(b)
        return decision.allowed

    results = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert sum(results) == 3
    assert len(await kube.list(CLUSTERS, NS)) == 3  # fmt: skip


async def test_reservations_count_until_stored_or_expired() -> None:
    kube = seeded({"clusters": 1})
    clock = Clock()
    admission = Admission(kube, "operator", clock=clock)
    assert (await admission.review(create(body("a")))).allowed
    # "a" is admitted but not stored yet: "b" must not take the last place too.
    refused = await admission.review(create(body("b")))
    assert not refused.allowed and "would have 2 DatabaseClusters, over its quota of 1" in refused.message()
    # A dry run is decided the same way and reserves nothing.
    assert (await admission.review(create(body("c"), dry_run=True))).allowed is False
    # "a" was refused later by the API server (never stored): its place comes back after the reservation.
    clock.now += RESERVATION_SECONDS + 1
    assert (await admission.review(create(body("b")))).allowed
    # Once stored and listed, the list counts it and the reservation goes: a delete frees the place.
    await kube.create(body("b"))
    assert not (await admission.review(create(body("c"), dry_run=True))).allowed
    await kube.delete(CLUSTERS, NS, "b")  # fmt: skip
    assert (await admission.review(create(body("c"), dry_run=True))).allowed


async def test_no_policy_required_and_tier() -> None:
    kube = seeded(engines=[{"type": "mongodb", "tier": "evaluation"}, {"type": "mariadb"}])
    admission = Admission(kube, "operator", require_policy=True)
    decision = await admission.tier(create(body("docs", engine="mongodb")))
    assert str(decision.tier) == "evaluation" and decision.policies == ("prod-rules",)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    lonely = {**body("x"), "metadata": {"name": "x", "namespace": "other"}}
    decision = await admission.review(
        Request("DatabaseCluster", "CREATE", "other", "x", lonely, None, "alice")
    )
    assert not decision.allowed and "no DatabasePolicy selects namespace other" in decision.message()


async def test_set_ca_bundle_writes_every_webhook() -> None:
    kube = FakeKube()
    hooks = [{"name": "a", "clientConfig": {}}, {"name": "b", "clientConfig": {"caBundle": "old"}}]
    kube.put({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "kt"}, "webhooks": hooks})  # fmt: skip
    assert await set_ca_bundle(kube, VALIDATING_WEBHOOK, "kt", b"PEM")
    hooks = kube.find(VALIDATING_WEBHOOK, None, "kt")["webhooks"]
    assert [base64.b64decode(h["clientConfig"]["caBundle"]) for h in hooks] == [b"PEM", b"PEM"]
    assert not await set_ca_bundle(kube, VALIDATING_WEBHOOK, "absent", b"PEM")
