"""Importing kubetrove.handlers registers the handlers the operator needs, for both kinds."""

from __future__ import annotations

import kopf

import kubetrove.handlers  # noqa: F401  (registers with kopf's default registry)


def _names(handlers: list) -> set[str]:
    return {str(h.id) for h in handlers}


def test_spec_timer_and_delete_handlers_for_both_kinds() -> None:
    registry = kopf.get_default_registry()
    by_plural: dict[str, set[str]] = {}
    for handler in registry._changing.get_all_handlers() + registry._spawning.get_all_handlers():
        by_plural.setdefault(handler.selector.any_name, set()).add(str(handler.fn.__name__))
    assert {"databaseinstance_spec", "database_refresh", "database_delete"} <= by_plural["databaseinstances"]
    assert {"databasecluster_spec", "database_refresh", "database_delete"} <= by_plural["databaseclusters"]


def test_startup_and_cleanup_activities() -> None:
    registry = kopf.get_default_registry()
    names = {h.fn.__name__ for h in registry._activities.get_all_handlers()}
    assert {"operator_startup", "operator_cleanup"} <= names
