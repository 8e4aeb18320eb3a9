"""Where a user reads an engine's error log: the operator side (``EngineContainer.error_log_container``,
which ``kubectl trove logs`` follows) must agree with the agent side (the driver's
``error_log_in_container_log``, which decides whether the agent republishes that log on its stdout).
If they disagreed, ``kubectl trove logs`` would read a container where the log never appears."""

from __future__ import annotations

import pytest

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver
from kubetrove.agent.protocol import Engine
from kubetrove.datastores import registry


@pytest.mark.parametrize("engine", list(Engine))
def test_the_cli_reads_the_error_log_where_the_agent_says_it_is(engine: Engine) -> None:
    driver = make_driver(engine.value, EngineConfig(host="127.0.0.1", user="u", password="p"))
    store = registry.get(engine)
    expected = "engine" if driver.error_log_in_container_log else "agent"
    for version in store.versions:
        assert store.container(version).error_log_container == expected, (engine, version)
