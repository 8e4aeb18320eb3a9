"""The agent sidecar runs the image built for the resource's engine, else the fallback image."""

from __future__ import annotations

import dataclasses

from kubetrove.api.common import Engine
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


async def test_an_engine_without_its_own_image_uses_the_fallback(kube: FakeKube, deps: Deps) -> None:
    deps = dataclasses.replace(deps, agent_images={Engine("mysql"): "agent:mysql"})
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    assert agent_image(kube) == "agent:test"
