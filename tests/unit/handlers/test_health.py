"""The liveness endpoint: configured from the environment, passed to kopf, answered by a standby."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from kubetrove.api.common import Engine
from kubetrove.handlers import main as main_module
from kubetrove.runtime.config import DEFAULT_AGENT_IMAGE, OperatorConfig
from kubetrove.runtime.health import standby_probe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_health_port_defaults_to_the_charts_and_can_be_disabled() -> None:
    assert OperatorConfig.from_env({}).liveness_endpoint == "http://0.0.0.0:8081/healthz"
    assert OperatorConfig.from_env({"KUBETROVE_HEALTH_PORT": "9000"}).liveness_endpoint == (
        "http://0.0.0.0:9000/healthz"
    )
    assert OperatorConfig.from_env({"KUBETROVE_HEALTH_PORT": "0"}).liveness_endpoint is None


def test_main_passes_the_liveness_endpoint_to_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(main_module.kopf, "run", lambda **kw: seen.update(kw))
    monkeypatch.setenv("KUBETROVE_HEALTH_PORT", "8123")
    monkeypatch.setenv("KUBETROVE_NAMESPACES", "a")
    main_module.main()
    assert seen["liveness_endpoint"] == "http://0.0.0.0:8123/healthz"
    assert seen["namespaces"] == ["a"] and seen["clusterwide"] is False


async def test_a_standby_answers_the_probe_until_it_holds_the_lease() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    async with aiohttp.ClientSession() as session:
        async with standby_probe(f"http://127.0.0.1:{port}/healthz"), session.get(url) as response:
            assert response.status == 200
            assert "standby" in await response.json()
        # Closed on leaving, so kopf's own reporter can bind the same port.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url):
                pass


async def test_a_taken_port_does_not_stop_the_standby() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with standby_probe(f"http://127.0.0.1:{port}/healthz"):
            pass


def test_agent_image_per_engine_with_the_fallback() -> None:
    env = {"KUBETROVE_AGENT_IMAGE": "agent:any", "KUBETROVE_AGENT_IMAGE_" + Engine("mysql").name: "agent:my"}
    c = OperatorConfig.from_env(env)
    assert c.agent_images == {Engine("mysql"): "agent:my"} and c.agent_image == "agent:any"
    assert OperatorConfig.from_env({"KUBETROVE_AGENT_IMAGE": ""}).agent_image == DEFAULT_AGENT_IMAGE


def test_every_engine_suffix_the_chart_sets_is_read() -> None:
    env = {f"KUBETROVE_AGENT_IMAGE_{e.value.upper()}": f"agent:{e.value}" for e in Engine}
    assert OperatorConfig.from_env(env).agent_images == {e: f"agent:{e.value}" for e in Engine}
