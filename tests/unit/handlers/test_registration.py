"""``kubetrove.handlers.register`` hands kopf every handler the operator needs, for both kinds."""

from __future__ import annotations

import kopf
import pytest

from kubetrove import handlers
from kubetrove.runtime.config import OperatorConfig


@pytest.fixture(scope="module")
def registry() -> kopf.OperatorRegistry:
    into = kopf.OperatorRegistry()
    handlers.register(into, OperatorConfig(status_interval=7.0))
    return into


def test_spec_timer_and_delete_handlers_for_both_kinds(registry: kopf.OperatorRegistry) -> None:
    by_plural: dict[str, set[str]] = {}
    for handler in registry._changing.get_all_handlers() + registry._spawning.get_all_handlers():
        by_plural.setdefault(handler.selector.any_name, set()).add(str(handler.fn.__name__))
    assert {"databaseinstance_spec", "database_refresh", "database_delete"} <= by_plural["databaseinstances"]
    assert {"databasecluster_spec", "database_refresh", "database_delete"} <= by_plural["databaseclusters"]
    assert {"databasebackup_run", "databasebackup_delete"} <= by_plural["databasebackups"]
    assert "databasecluster_clustering" in by_plural["databaseclusters"]


def test_the_status_refresh_runs_at_the_configured_interval(registry: kopf.OperatorRegistry) -> None:
    timers = [h for h in registry._spawning.get_all_handlers() if h.fn.__name__ == "database_refresh"]
    by_plural = {h.selector.any_name: (h.interval, h.initial_delay) for h in timers}
    # KUBETROVE_STATUS_INTERVAL alone applies to instances too (OperatorConfig.from_env); built directly,
    # the instance timer keeps its own default.
    assert by_plural == {"databaseclusters": (7.0, 7.0), "databaseinstances": (300.0, 300.0)}


def test_instances_have_their_own_status_interval() -> None:
    into = kopf.OperatorRegistry()
    handlers.register(into, OperatorConfig.from_env({"KUBETROVE_INSTANCE_STATUS_INTERVAL": "600"}))
    timers = [h for h in into._spawning.get_all_handlers() if h.fn.__name__ == "database_refresh"]
    assert {h.selector.any_name: h.interval for h in timers} == {
        "databaseinstances": 600.0,
        "databaseclusters": 30.0,
    }


def test_startup_cleanup_and_login_activities(registry: kopf.OperatorRegistry) -> None:
    names = {h.fn.__name__ for h in registry._activities.get_all_handlers()}
    assert {"operator_startup", "operator_cleanup", "login_via_client"} <= names


def test_importing_the_handlers_registers_nothing_by_itself() -> None:
    default = kopf.get_default_registry()
    ours = [h for h in default._changing.get_all_handlers() if h.fn.__module__.startswith("kubetrove")]
    assert ours == []


def test_admission_webhooks_only_when_enabled(registry: kopf.OperatorRegistry) -> None:
    assert registry._webhooks.get_all_handlers() == []  # no KUBETROVE_ADMISSION_PORT: no webhooks
    into = kopf.OperatorRegistry()
    handlers.register(into, OperatorConfig(admission_port=9443))
    hooks = {(h.selector.any_name, h.id, str(h.reason)) for h in into._webhooks.get_all_handlers()}
    assert hooks == {
        ("databaseinstances", "policy", "validating"),
        ("databaseclusters", "policy", "validating"),
        ("databasebackups", "policy", "validating"),
        ("databaseinstances", "tier", "mutating"),
        ("databaseclusters", "tier", "mutating"),
    }
    assert all(set(h.operations or ()) == {"CREATE", "UPDATE"} for h in into._webhooks.get_all_handlers())


def test_instances_with_autogrow_have_an_autogrow_timer() -> None:
    into = kopf.OperatorRegistry()
    handlers.register(into, OperatorConfig.from_env({"KUBETROVE_AUTOGROW_INTERVAL": "45"}))
    (timer,) = [h for h in into._spawning.get_all_handlers() if h.fn.__name__ == "databaseinstance_autogrow"]
    assert (timer.selector.any_name, timer.interval, timer.initial_delay) == ("databaseinstances", 45.0, 45.0)
    assert timer.when is not None
    assert timer.when(spec={"storage": {"size": "1Gi", "autogrow": {"maximum": "2Gi"}}})
    assert not timer.when(spec={"storage": {"size": "1Gi"}})
    assert not timer.when(spec={})
