"""``kubectl trove catalog``: the namespace's view through its DatabasePolicies (namespace_offer)."""

from __future__ import annotations

from typing import Any

from kubetrove.cli import commands
from kubetrove.cli.commands import Ctx
from kubetrove.k8s.errors import ApiError
from tests.unit.reconcile.fake_kube import FakeKube


def kube_with(labels: dict[str, str]) -> FakeKube:
    kube = FakeKube()
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": labels}})
    kube.put({
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabasePolicy", "metadata": {"name": "dev-rules"},
        "spec": {"namespaceSelector": {"matchLabels": {"environment": "dev"}},
                 "engines": [{"type": "mysql", "versions": ["9.7"]},
                             {"type": "mongodb", "tier": "evaluation"}]},
    })  # fmt: skip
    return kube


async def test_the_catalog_shows_what_the_namespace_may_create_and_at_which_tier() -> None:
    rows = await commands.namespace_catalog(Ctx(kube_with({"environment": "dev"}), "team"))
    assert {(r["engine"], r["version"]) for r in rows if r["engine"] == "mysql"} == {("mysql", "9.7")}
    assert {r["tier"] for r in rows if r["engine"] == "mongodb"} == {"evaluation"}
    assert {r["engine"] for r in rows} == {"mysql", "mongodb"}
    assert {r["policies"] for r in rows} == {"dev-rules"}
    # A namespace no policy selects: the whole catalog, no tier.
    rows = await commands.namespace_catalog(Ctx(kube_with({}), "team"))
    assert len(rows) == len(commands.catalog()) and {r["tier"] for r in rows} == {"-"}


class Forbidden(FakeKube):
    async def list(self, *args: Any, **kwargs: Any) -> Any:
        raise ApiError(403, "Forbidden", "cannot list databasepolicies")


async def test_without_read_access_to_policies_the_whole_catalog_tier_unknown() -> None:
    rows = await commands.namespace_catalog(Ctx(Forbidden(), "team"))
    assert len(rows) == len(commands.catalog()) and {r["tier"] for r in rows} == {"unknown"}
