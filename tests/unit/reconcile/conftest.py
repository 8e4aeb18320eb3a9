"""Fixtures for reconcile unit tests: a fake API server, fixed clock and tokens, CR bodies."""

from __future__ import annotations

import datetime
import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest

from kubetrove.api.resources import CLUSTER, INSTANCE, Kind, Parsed, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.reconcile.context import Deps
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.fake_kube import FakeKube

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
LOG = logging.getLogger("test")


def body(kind: Kind = INSTANCE, generation: int = 1, **spec: Any) -> dict[str, Any]:
    """A custom resource body as the API server would hand it to kopf."""
    full = {"datastore": {"type": "mariadb", "version": "10.11"}, "storage": {"size": "1Gi"}, **spec}
    return {
        "apiVersion": "kubetrove.io/v1alpha1",
        "kind": kind.kind,
        "metadata": {"name": "db", "namespace": "ns", "uid": "uid-db", "generation": generation},
        "spec": full,
    }


def parsed(kind: Kind = INSTANCE, generation: int = 1, **spec: Any) -> Parsed[InstanceSpec]:
    """The parsed form of ``body``."""
    return parse_body(kind, body(kind, generation, **spec), kind.spec)  # type: ignore[arg-type]


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def agents() -> FakeAgents:
    return FakeAgents()


@pytest.fixture
def deps(kube: FakeKube, agents: FakeAgents) -> Deps:
    counter = itertools.count(1)
    return Deps(
        kube=kube,
        agent_image="agent:test",
        clock=lambda: NOW,
        token=lambda: f"tok{next(counter)}",
        agents=agents,
    )


@pytest.fixture
def make() -> Callable[..., Parsed[InstanceSpec]]:
    return parsed


__all__ = ["CLUSTER", "INSTANCE", "LOG", "NOW", "body", "parsed"]
