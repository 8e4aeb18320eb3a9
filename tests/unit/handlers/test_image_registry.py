"""KUBETROVE_IMAGE_REGISTRY: one setting moves the catalog's engine images and the default agent image."""

from __future__ import annotations

import pytest

from kubetrove.runtime.config import DEFAULT_IMAGE_REGISTRY, OperatorConfig


def test_the_default_is_the_local_registry_make_images_pushes_to() -> None:
    c = OperatorConfig.from_env({})
    assert c.image_registry == DEFAULT_IMAGE_REGISTRY == "127.0.0.1:5000/kubetrove"
    assert c.agent_image == "127.0.0.1:5000/kubetrove/agent:0.1.0"


def test_a_registry_of_your_own_moves_the_agent_too() -> None:
    c = OperatorConfig.from_env({"KUBETROVE_IMAGE_REGISTRY": "registry.example.com:5443/dbs/"})
    assert c.image_registry == "registry.example.com:5443/dbs"
    assert c.agent_image == "registry.example.com:5443/dbs/agent:0.1.0"


def test_an_explicit_agent_image_wins() -> None:
    env = {"KUBETROVE_IMAGE_REGISTRY": "r.example/x", "KUBETROVE_AGENT_IMAGE": "other.example/agent:9"}
    assert OperatorConfig.from_env(env).agent_image == "other.example/agent:9"


def test_empty_means_the_catalog_names_as_they_are() -> None:
    c = OperatorConfig.from_env({"KUBETROVE_IMAGE_REGISTRY": ""})
    assert c.image_registry == "" and c.agent_image == "agent:0.1.0"


@pytest.mark.parametrize("bad", ["http://r.example", "r.example/x:1", "r.example/x@sha256:ab", "r .example"])
def test_a_bad_registry_names_the_setting(bad: str) -> None:
    with pytest.raises(ValueError, match="KUBETROVE_IMAGE_REGISTRY"):
        OperatorConfig.from_env({"KUBETROVE_IMAGE_REGISTRY": bad})


def test_network_policy_setting() -> None:
    assert OperatorConfig.from_env({}).network_policy_from is None
    on = OperatorConfig.from_env({"KUBETROVE_NETWORK_POLICY": "true", "KUBETROVE_LEASE_NAMESPACE": "kt-sys"})
    assert on.network_policy_from == "kt-sys"  # the chart runs the operator in its release namespace
    assert OperatorConfig.from_env({"KUBETROVE_NETWORK_POLICY": "false"}).network_policy_from is None
