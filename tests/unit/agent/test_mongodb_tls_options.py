"""The agent's pymongo clients are built with and without spec.tls (pymongo refuses any tls option,
even False, when TLS is off: every MongoDB agent call failed so, found by the integration tier)."""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.driver import MongoDBDriver
from kubetrove.agent.engines.mongodb.tls import tls_options


@pytest.mark.parametrize("tls", [False, True])
def test_the_driver_builds_its_client_with_and_without_tls(tls: bool) -> None:
    driver = MongoDBDriver(EngineConfig(host="127.0.0.1", port=1, user="u", password="p", tls=tls))
    client = driver._connect()  # builds the client; no server is contacted until the first command
    try:
        assert (client.options.pool_options._ssl_context is not None) is tls
    finally:
        client.close()


@pytest.mark.parametrize("tls", [False, True])
def test_the_file_copy_options_make_a_valid_client(tls: bool) -> None:
    client: MongoClient[dict[str, object]] = MongoClient("127.0.0.1", 1, connect=False, **tls_options(tls))
    client.close()
    assert tls_options(tls) == ({"tls": True, "tlsAllowInvalidCertificates": True} if tls else {})
