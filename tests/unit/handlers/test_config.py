"""Operator configuration from the environment."""

from __future__ import annotations

import pytest

from kubetrove.datastores.base import qualified_image
from kubetrove.handlers.settings import configure
from kubetrove.runtime.config import DEFAULT_AGENT_IMAGE, DEFAULT_IMAGE_REGISTRY, OperatorConfig


def test_defaults_watch_every_namespace() -> None:
    c = OperatorConfig.from_env({})
    assert c.namespaces == () and c.lease_namespace == "default"
    assert c.agent_image == qualified_image(DEFAULT_IMAGE_REGISTRY, DEFAULT_AGENT_IMAGE)


def test_namespaces_and_lease_from_env() -> None:
    c = OperatorConfig.from_env({"KUBETROVE_NAMESPACES": "a, b,", "POD_NAMESPACE": "ops"})
    assert c.namespaces == ("a", "b") and c.lease_namespace == "ops"
    assert OperatorConfig.from_env({}).identity != OperatorConfig.from_env({}).identity


def test_kopf_settings_heal_stalled_watches_and_keep_status_clean() -> None:
    import kopf

    s = kopf.OperatorSettings()
    configure(s)
    assert s.watching.server_timeout and s.watching.client_timeout
    assert s.watching.client_timeout > s.watching.server_timeout
    assert isinstance(s.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert s.peering.standalone


def test_verify_timeout_and_reporting_pod_from_env() -> None:
    assert (OperatorConfig().verify_timeout_seconds, OperatorConfig().pod_name) == (1800.0, None)
    config = OperatorConfig.from_env(
        {"KUBETROVE_VERIFY_TIMEOUT_SECONDS": "90", "POD_NAME": "kubetrove-7d9-x"}
    )
    assert (config.verify_timeout_seconds, config.pod_name) == (90.0, "kubetrove-7d9-x")


def test_admission_settings_from_env() -> None:
    off = OperatorConfig.from_env({})
    assert (off.admission_port, off.policy_required) == (0, False)
    config = OperatorConfig.from_env({
        "KUBETROVE_ADMISSION_PORT": "9443", "KUBETROVE_ADMISSION_HOSTS": "a.ns.svc, a.ns.svc.cluster.local",
        "KUBETROVE_VALIDATING_WEBHOOK": "kt", "KUBETROVE_MUTATING_WEBHOOK": "kt",
        "KUBETROVE_POLICY_REQUIRED": "True",
    })  # fmt: skip
    assert config.admission_hosts == ("a.ns.svc", "a.ns.svc.cluster.local")
    assert (config.admission_port, config.validating_webhook, config.policy_required) == (9443, "kt", True)
    with pytest.raises(ValueError, match="KUBETROVE_POLICY_REQUIRED='yes'"):
        OperatorConfig.from_env({"KUBETROVE_POLICY_REQUIRED": "yes"})
