"""The agent sidecar runs the image built for the resource's engine, else the fallback image."""

from __future__ import annotations

import dataclasses

from kubetrove.api.common import Engine
from kubetrove.datastores.base import VersionInfo
from kubetrove.k8s.kinds import STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.render.names import AGENT_CONTAINER
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube


def agent_image(kube: FakeKube) -> str:
    pod = kube.find(STATEFULSET, "ns", "db")["spec"]["template"]["spec"]
    (image,) = [c["image"] for c in pod["containers"] if c["name"] == AGENT_CONTAINER]
    return str(image)


async def test_the_engines_own_agent_image_is_used(kube: FakeKube, deps: Deps) -> None:
    deps = dataclasses.replace(
        deps, agent_images={Engine("mariadb"): "agent:mariadb", Engine("mysql"): "agent:mysql"}
    )
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    assert agent_image(kube) == "agent:mariadb"


async def test_an_engine_without_its_own_image_uses_its_versions_agent(kube: FakeKube, deps: Deps) -> None:
    """MariaDB 10.11 names the agent built from its own root filesystem (the catalog's agent_image)."""
    deps = dataclasses.replace(deps, agent_images={Engine("mysql"): "agent:mysql"})
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    assert agent_image(kube).rpartition("/")[2] == "agent-mariadb-10.11:0.1.0"


def test_a_versions_own_agent_image_is_used_in_the_image_registry(deps: Deps) -> None:
    """VersionInfo.agent_image (tools matching that server) wins over the fallback, not over the env."""
    info = VersionInfo("9.7", "mysql:9.7.4", major="9", agent_image="agent-mysql:0.1.0")
    d = dataclasses.replace(deps, image_registry="reg.example/kt")
    assert d.agent_image_for(Engine("mysql"), info) == "reg.example/kt/agent-mysql:0.1.0"
    assert d.agent_image_for(Engine("mysql"), None) == d.agent_image
    d = dataclasses.replace(d, agent_images={Engine("mysql"): "mine/agent:1"})
    assert d.agent_image_for(Engine("mysql"), info) == "mine/agent:1"
