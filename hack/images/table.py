"""RECIPES: every image the project builds and ships, by name (recipes.py and cassandra.py say what each
holds). The order is the build order of `make images`."""

from __future__ import annotations

from collections.abc import Callable

from .cassandra import cassandra_images
from .recipes import (
    ENGINE_RECIPES,
    ENGINE_SUITES,
    Recipe,
    agent,
    agent_mysql,
    busybox,
    engine_agent,
    mongo,
    mysql,
    operator,
    pause,
)


def _engine_images() -> dict[str, Callable[[], Recipe]]:
    """Each built engine version's image and its agent twin, by recipe name."""
    table: dict[str, Callable[[], Recipe]] = {}
    for engine, versions in ENGINE_SUITES.items():
        for version in versions:
            table[f"{engine}-{version}"] = lambda e=engine, v=version: ENGINE_RECIPES[e](v)
            table[f"agent-{engine}-{version}"] = lambda e=engine, v=version: engine_agent(e, v)
    return table


# name -> recipe. The order is the build order of `make images` (small and shared first; an engine
# image before its agent twin, which reuses its root filesystem layer).
RECIPES: dict[str, Callable[[], Recipe]] = {
    "pause": pause,
    "busybox": busybox,
    "agent": agent,
    "operator": operator,
    **_engine_images(),
    "mongo": mongo,
    "mysql": mysql,
    "agent-mysql": agent_mysql,
    **cassandra_images(),
}
